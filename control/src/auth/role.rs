//! A user's role in an organization, and the scopes it stands for.
//!
//! | role | scopes | and also |
//! | --- | --- | --- |
//! | `viewer` | `links:read`, `stats:read` | |
//! | `editor` | + `links:write` | |
//! | `admin` | `admin` (all four) | members below admin, invitations of them, the audit log |
//! | `owner` | `admin` | every member incl. admins and owners |
//!
//! Scopes are what every existing handler checks (`Auth::org(scope)`), so a
//! session acts on links, keys and stats exactly as a key with those scopes
//! would; the role itself matters only where people are managed
//! ([`Role::may_manage`]). The mapping itself, `Role::scopes`, sits beside
//! the scopes in [`super::principal`].

/// Ordered from least to most: `Viewer < Editor < Admin < Owner`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Editor,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Editor, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether a member with this role may give `target` to someone, or
    /// change or remove someone who has it: owners touch everyone, admins
    /// only editors and viewers, the others nobody.
    pub fn may_manage(self, target: Role) -> bool {
        match self {
            Role::Owner => true,
            Role::Admin => target < Role::Admin,
            Role::Editor | Role::Viewer => false,
        }
    }
}

/// A role read from PostgreSQL (the tables' CHECKs keep it one of four).
impl TryFrom<String> for Role {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Role::parse(&s).ok_or_else(|| format!("unknown role {s:?} in the database"))
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_order() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("Owner"), None);
        assert!(Role::Viewer < Role::Editor && Role::Admin < Role::Owner);
    }

    #[test]
    fn who_manages_whom() {
        assert!(Role::Owner.may_manage(Role::Owner));
        assert!(Role::Admin.may_manage(Role::Editor));
        assert!(!Role::Admin.may_manage(Role::Admin));
        assert!(!Role::Admin.may_manage(Role::Owner));
        assert!(!Role::Editor.may_manage(Role::Viewer));
    }
}
