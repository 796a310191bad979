//! What a verified credential stands for, and the checks handlers make.

use super::role::Role;
use crate::audit::Actor;
use crate::error::{ApiError, ApiResult};
use crate::ratelimit::Caller;
use std::net::IpAddr;

/// What an organization member may do. `Admin` implies all the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    LinksRead,
    LinksWrite,
    StatsRead,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::LinksRead,
        Scope::LinksWrite,
        Scope::StatsRead,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::LinksRead => "links:read",
            Scope::LinksWrite => "links:write",
            Scope::StatsRead => "stats:read",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Checks a scope list given for a new key.
    pub fn parse_list(scopes: &[String]) -> ApiResult<Vec<Scope>> {
        if scopes.is_empty() {
            return Err(ApiError::invalid_field(
                "scopes",
                "at least one scope is required",
            ));
        }
        let mut out = Vec::with_capacity(scopes.len());
        for s in scopes {
            let scope = Scope::parse(s).ok_or_else(|| {
                let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::invalid_field(
                    "scopes",
                    format!(
                        "unknown scope {:?}; known: {}",
                        s.chars().take(64).collect::<String>(),
                        known.join(", ")
                    ),
                )
            })?;
            if !out.contains(&scope) {
                out.push(scope);
            }
        }
        Ok(out)
    }
}

impl Role {
    /// The scopes a member with this role holds (the table in [`super::role`]).
    pub fn scopes(self) -> Vec<Scope> {
        match self {
            Role::Owner | Role::Admin => vec![Scope::Admin],
            Role::Editor => vec![Scope::LinksRead, Scope::LinksWrite, Scope::StatsRead],
            Role::Viewer => vec![Scope::LinksRead, Scope::StatsRead],
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The service's operator: every global route, no organization's data
    /// through the tenant routes.
    Operator,
    /// A member of one organization, limited to `scopes`.
    Org { org_id: i64, scopes: Vec<Scope> },
    /// A signed-in user who has not chosen an organization (they belong to
    /// none or to several and sent no `X-Org`) and is not the operator: the
    /// routes about themselves only.
    User,
}

/// What proved the principal (and what the audit log names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    ApiKey {
        id: i64,
    },
    /// A browser session of a user; `role` is their role in the
    /// organization the request acts on, if it acts on one.
    Session {
        id: i64,
        user_id: i64,
        role: Option<Role>,
    },
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub credential: Credential,
    pub principal: Principal,
    /// The client's address (the TCP peer), for the audit log.
    pub ip: Option<IpAddr>,
}

impl Auth {
    /// For tenant routes: the caller's organization, when it holds `scope`
    /// (or `admin`). 403 for the operator and for a key without the scope.
    pub fn org(&self, scope: Scope) -> ApiResult<i64> {
        match &self.principal {
            Principal::Org { org_id, scopes }
                if scopes.iter().any(|s| *s == scope || *s == Scope::Admin) =>
            {
                Ok(*org_id)
            }
            Principal::Org { .. } => Err(ApiError::Forbidden {
                required: scope.as_str(),
            }),
            Principal::Operator => Err(ApiError::OrganizationRequired),
            Principal::User => Err(ApiError::OrganizationNotChosen),
        }
    }

    /// For routes that manage people: the caller's organization and role
    /// when the role is at least `min`. A key is never an owner; one with
    /// the `admin` scope counts as an admin.
    pub fn member(&self, min: Role) -> ApiResult<(i64, Role)> {
        let org_id = match &self.principal {
            Principal::Org { org_id, .. } => *org_id,
            Principal::Operator => return Err(ApiError::OrganizationRequired),
            Principal::User => return Err(ApiError::OrganizationNotChosen),
        };
        let role = match (self.credential, &self.principal) {
            (Credential::Session { role, .. }, _) => role,
            (Credential::ApiKey { .. }, Principal::Org { scopes, .. })
                if scopes.contains(&Scope::Admin) =>
            {
                Some(Role::Admin)
            }
            (Credential::ApiKey { .. }, _) => None,
        };
        match role {
            Some(role) if role >= min => Ok((org_id, role)),
            _ => Err(ApiError::RoleRequired {
                required: min.as_str(),
            }),
        }
    }

    /// For global routes: 403 unless the caller is the operator.
    pub fn operator(&self) -> ApiResult<()> {
        match self.principal {
            Principal::Operator => Ok(()),
            Principal::Org { .. } | Principal::User => Err(ApiError::OperatorRequired),
        }
    }

    /// The signed-in user, if a session proved this caller.
    pub fn user_id(&self) -> Option<i64> {
        match self.credential {
            Credential::Session { user_id, .. } => Some(user_id),
            Credential::ApiKey { .. } => None,
        }
    }

    /// Who the audit log records.
    pub fn actor(&self) -> Actor {
        let (key_id, user_id) = match self.credential {
            Credential::ApiKey { id } => (Some(id), None),
            Credential::Session { user_id, .. } => (None, Some(user_id)),
        };
        Actor {
            key_id,
            user_id,
            operator: self.principal == Principal::Operator,
            ip: self.ip,
        }
    }

    /// The rate-limit bucket of this credential: the key, or the user (all
    /// of a user's sessions share one).
    pub fn bucket(&self) -> Caller {
        match self.credential {
            Credential::ApiKey { id } => Caller::Key(id),
            Credential::Session { user_id, .. } => Caller::User(user_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(scopes: &[Scope]) -> Auth {
        Auth {
            credential: Credential::ApiKey { id: 1 },
            principal: Principal::Org {
                org_id: 7,
                scopes: scopes.to_vec(),
            },
            ip: None,
        }
    }

    #[test]
    fn scopes() {
        assert!(Scope::parse_list(&["links:read".into()]).is_ok());
        assert!(Scope::parse_list(&[]).is_err());
        assert!(Scope::parse_list(&["root".into()]).is_err());
        assert_eq!(org(&[Scope::Admin]).org(Scope::LinksWrite).unwrap(), 7);
        assert!(org(&[Scope::LinksRead]).org(Scope::LinksWrite).is_err());
    }

    #[test]
    fn operator_and_tenants_are_apart() {
        let operator = Auth {
            credential: Credential::ApiKey { id: 2 },
            principal: Principal::Operator,
            ip: None,
        };
        assert!(operator.operator().is_ok());
        assert!(matches!(
            operator.org(Scope::LinksRead),
            Err(ApiError::OrganizationRequired)
        ));
        assert!(matches!(
            org(&[Scope::Admin]).operator(),
            Err(ApiError::OperatorRequired)
        ));
        assert!(operator.actor().operator);
        assert!(!org(&[Scope::Admin]).actor().operator);
    }

    #[test]
    fn sessions_act_by_role() {
        let member = |role: Role| Auth {
            credential: Credential::Session {
                id: 3,
                user_id: 4,
                role: Some(role),
            },
            principal: Principal::Org {
                org_id: 7,
                scopes: role.scopes(),
            },
            ip: Some("192.0.2.1".parse().unwrap()),
        };
        assert!(!Role::Viewer.scopes().contains(&Scope::LinksWrite));
        assert!(Role::Editor.scopes().contains(&Scope::LinksWrite));
        assert!(!Role::Editor.scopes().contains(&Scope::Admin));
        assert!(member(Role::Viewer).org(Scope::LinksWrite).is_err());
        assert_eq!(member(Role::Editor).org(Scope::LinksWrite).unwrap(), 7);
        assert!(matches!(
            member(Role::Editor).member(Role::Admin),
            Err(ApiError::RoleRequired { .. })
        ));
        assert_eq!(
            member(Role::Owner).member(Role::Admin).unwrap(),
            (7, Role::Owner)
        );
        assert_eq!(
            org(&[Scope::Admin]).member(Role::Admin).unwrap(),
            (7, Role::Admin)
        );
        assert!(org(&[Scope::Admin]).member(Role::Owner).is_err());
        assert!(org(&[Scope::LinksRead]).member(Role::Viewer).is_err());
        let actor = member(Role::Viewer).actor();
        assert_eq!((actor.key_id, actor.user_id), (None, Some(4)));
        assert_eq!(actor.ip, Some("192.0.2.1".parse().unwrap()));
        let chooser = Auth {
            principal: Principal::User,
            ..member(Role::Viewer)
        };
        assert!(matches!(
            chooser.org(Scope::LinksRead),
            Err(ApiError::OrganizationNotChosen)
        ));
        assert!(chooser.operator().is_err());
    }
}
