//! What a verified credential stands for, and the checks handlers make.

use crate::audit::Actor;
use crate::error::{ApiError, ApiResult};

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

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The service's operator: every global route, no organization's data
    /// through the tenant routes.
    Operator,
    /// A member of one organization, limited to `scopes`.
    Org { org_id: i64, scopes: Vec<Scope> },
}

/// What proved the principal (and what the audit log names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    ApiKey { id: i64 },
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub credential: Credential,
    pub principal: Principal,
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
        }
    }

    /// For global routes: 403 unless the caller is the operator.
    pub fn operator(&self) -> ApiResult<()> {
        match self.principal {
            Principal::Operator => Ok(()),
            Principal::Org { .. } => Err(ApiError::OperatorRequired),
        }
    }

    /// Who the audit log records.
    pub fn actor(&self) -> Actor {
        let Credential::ApiKey { id } = self.credential;
        Actor {
            key_id: Some(id),
            operator: self.principal == Principal::Operator,
        }
    }

    /// The rate-limit bucket of this credential.
    pub fn bucket(&self) -> i64 {
        let Credential::ApiKey { id } = self.credential;
        id
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
}
