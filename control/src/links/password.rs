//! Link passwords: the policy, and the verifier engines check.
//!
//! A link's password is a shared secret its owner hands out ("launch2026"),
//! not an account password, so the policy only bounds it: 4 to 256 bytes,
//! no control characters. Control hashes it with argon2id (version 0x13,
//! one lane) and keeps only the PHC string (`links.password_hash`); the API
//! shows `password_protected`, never the password nor its hash.
//!
//! **Parameters**: m = [`M_COST_KIB`] KiB, t = [`T_COST`], lighter than the
//! accounts' 19 MiB × 2 because an engine core checks the password itself,
//! on the core that serves redirects (docs/password-links.md has the
//! measured cost and the limits that keep guessing from burning a core).
//! The link's target sits in the same snapshot as the hash, so the hash
//! guards the password (people reuse them), not the target. Engines refuse
//! verifiers past `snapshots::password`'s bounds.

use crate::error::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};

/// argon2 memory cost of a link password, KiB (4 MiB).
pub const M_COST_KIB: u32 = 4 * 1024;
/// argon2 passes of a link password.
pub const T_COST: u32 = 1;
/// Fewest bytes of a link password.
pub const MIN_BYTES: usize = 4;
/// Most bytes of a link password (what engines read from their form).
pub const MAX_BYTES: usize = snapshots::password::MAX_PASSWORD_LEN;

/// A link password as a request carries it: never printed, never stored.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LinkPassword(String);

impl std::fmt::Debug for LinkPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkPassword(***)")
    }
}

impl LinkPassword {
    /// Checks the policy, naming `field` in the refusal.
    pub fn checked(&self, field: &str) -> ApiResult<&str> {
        let password = self.0.as_str();
        if password.len() < MIN_BYTES || password.len() > MAX_BYTES {
            return Err(ApiError::invalid_field(
                field,
                format!(
                    "{} bytes; a link password has {MIN_BYTES} to {MAX_BYTES}",
                    password.len()
                ),
            ));
        }
        if password.chars().any(char::is_control) {
            return Err(ApiError::invalid_field(
                field,
                "has a control character, which no one can type into the form",
            ));
        }
        Ok(password)
    }
}

impl LinkPassword {
    /// The password, for hashing (once [`LinkPassword::checked`]).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty (a form's field left blank).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for LinkPassword {
    fn from(password: &str) -> Self {
        LinkPassword(password.to_owned())
    }
}

/// The argon2 parameters of link passwords.
pub fn params() -> argon2::Params {
    argon2::Params::new(M_COST_KIB, T_COST, 1, Some(snapshots::password::HASH_LEN))
        .expect("argon2 parameters in range")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert!(LinkPassword::from("open").checked("password").is_ok());
        assert!(LinkPassword::from("ope").checked("password").is_err());
        assert!(LinkPassword::from("tab\there").checked("password").is_err());
        assert!(
            LinkPassword::from(&*"x".repeat(257))
                .checked("password")
                .is_err()
        );
        assert!(
            LinkPassword::from(&*"é".repeat(128))
                .checked("password")
                .is_ok()
        );
        assert_eq!(
            format!("{:?}", LinkPassword::from("secret!")),
            "LinkPassword(***)"
        );
    }

    #[test]
    fn the_parameters_are_ones_engines_accept() {
        let p = params();
        assert!(p.m_cost() <= snapshots::password::MAX_M_COST_KIB);
        assert!(p.t_cost() <= snapshots::password::MAX_T_COST);
    }
}
