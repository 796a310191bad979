//! Password gates: the verifier of a password-protected link.
//!
//! Control hashes a link's password with argon2id and hands the hash on as
//! a PHC string (`$argon2id$v=19$m=…,t=…,p=1$<salt>$<hash>`, base64 without
//! padding); the owned [`crate::Link`] carries that string, deltas carry it
//! as `password_hash` (version 6), and a snapshot (format 6) keeps it decoded
//! as a [`PasswordValue`] in a side table, so a link without a password keeps
//! its 32-byte record and lookup path. Engines verify a visitor's password
//! against it without parsing text on the request path.
//!
//! The bounds below are what an engine agrees to spend per check: a core
//! runs argon2 itself (it is CPU work, not I/O), so the memory and passes
//! are capped, and a verifier outside them is refused at the source: the
//! link's validation, a delta's decoding, a snapshot's opening.
//!
//! The target of a protected link sits in the same snapshot as its
//! verifier, so the hash does not guard the target from whoever holds the
//! file; it guards the password itself (people reuse them), which is why it
//! is a slow, salted hash rather than a keyed digest.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rkyv::{Archive, Serialize};

/// The hash length every verifier has (argon2's default output).
pub const HASH_LEN: usize = 32;
/// Shortest salt accepted (argon2's minimum).
pub const MIN_SALT_LEN: usize = 8;
/// Longest salt accepted.
pub const MAX_SALT_LEN: usize = 64;
/// Most memory one check may take, in KiB (OWASP's argon2id m = 19 MiB).
pub const MAX_M_COST_KIB: u32 = 19 * 1024;
/// Least memory accepted, in KiB (argon2's minimum for one lane).
pub const MIN_M_COST_KIB: u32 = 8;
/// Most passes one check may take.
pub const MAX_T_COST: u32 = 10;
/// Longest password a visitor may submit, in bytes after form decoding.
pub const MAX_PASSWORD_LEN: usize = 256;

/// Why a verifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error(
        "password_hash is not an argon2id PHC string ($argon2id$v=19$m=<kib>,t=<passes>,p=1$<salt>$<hash>)"
    )]
    Format,
    #[error("password_hash memory m={0} KiB is outside {MIN_M_COST_KIB}..={MAX_M_COST_KIB}")]
    Memory(u32),
    #[error("password_hash passes t={0} are outside 1..={MAX_T_COST}")]
    Passes(u32),
    #[error("password_hash salt is {0} bytes; {MIN_SALT_LEN} to {MAX_SALT_LEN} are accepted")]
    Salt(usize),
    #[error("password_hash hash is {0} bytes; it must be {HASH_LEN}")]
    Hash(usize),
}

/// A decoded argon2id (version 0x13, one lane) verifier.
#[derive(Archive, Serialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct PasswordValue {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Passes.
    pub t_cost: u32,
    pub salt: Vec<u8>,
    /// [`HASH_LEN`] bytes.
    pub hash: Vec<u8>,
}

impl PasswordValue {
    /// Decodes and checks a PHC string.
    pub fn from_phc(phc: &str) -> Result<PasswordValue, PasswordError> {
        let mut parts = phc.split('$');
        let (Some(""), Some("argon2id"), Some("v=19"), Some(params), Some(salt), Some(hash), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(PasswordError::Format);
        };
        let mut m_cost = None;
        let mut t_cost = None;
        let mut lanes = None;
        for param in params.split(',') {
            let (name, value) = param.split_once('=').ok_or(PasswordError::Format)?;
            let value: u32 = value.parse().map_err(|_| PasswordError::Format)?;
            let slot = match name {
                "m" => &mut m_cost,
                "t" => &mut t_cost,
                "p" => &mut lanes,
                _ => return Err(PasswordError::Format),
            };
            if slot.replace(value).is_some() {
                return Err(PasswordError::Format);
            }
        }
        let (Some(m_cost), Some(t_cost), Some(1)) = (m_cost, t_cost, lanes) else {
            return Err(PasswordError::Format);
        };
        let decode = |text: &str| {
            STANDARD_NO_PAD
                .decode(text)
                .map_err(|_| PasswordError::Format)
        };
        let value = PasswordValue {
            m_cost,
            t_cost,
            salt: decode(salt)?,
            hash: decode(hash)?,
        };
        check(value.m_cost, value.t_cost, &value.salt, &value.hash)?;
        Ok(value)
    }

    /// The PHC string it was decoded from (canonical form).
    pub fn to_phc(&self) -> String {
        format!(
            "$argon2id$v=19$m={},t={},p=1${}${}",
            self.m_cost,
            self.t_cost,
            STANDARD_NO_PAD.encode(&self.salt),
            STANDARD_NO_PAD.encode(&self.hash)
        )
    }
}

impl ArchivedPasswordValue {
    /// The bounds [`PasswordValue::from_phc`] checks, on an archived value
    /// (a snapshot's opening).
    pub fn check(&self) -> Result<(), PasswordError> {
        check(
            self.m_cost.to_native(),
            self.t_cost.to_native(),
            &self.salt,
            &self.hash,
        )
    }

    /// An owned copy (tools, tests).
    pub fn to_owned_value(&self) -> PasswordValue {
        PasswordValue {
            m_cost: self.m_cost.to_native(),
            t_cost: self.t_cost.to_native(),
            salt: self.salt.to_vec(),
            hash: self.hash.to_vec(),
        }
    }
}

fn check(m_cost: u32, t_cost: u32, salt: &[u8], hash: &[u8]) -> Result<(), PasswordError> {
    if !(MIN_M_COST_KIB..=MAX_M_COST_KIB).contains(&m_cost) {
        return Err(PasswordError::Memory(m_cost));
    }
    if !(1..=MAX_T_COST).contains(&t_cost) {
        return Err(PasswordError::Passes(t_cost));
    }
    if !(MIN_SALT_LEN..=MAX_SALT_LEN).contains(&salt.len()) {
        return Err(PasswordError::Salt(salt.len()));
    }
    if hash.len() != HASH_LEN {
        return Err(PasswordError::Hash(hash.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-formed PHC string (m=1024, t=2; salt "somesaltsomesalt", 32
    /// arbitrary hash bytes): decoding never checks a password.
    const SAMPLE: &str = "$argon2id$v=19$m=1024,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Ck1HvCoR4YW0GMpwA4MYS8aWKX9o8D1rtBpNOs7FVd8";

    #[test]
    fn a_phc_string_round_trips() {
        let value = PasswordValue::from_phc(SAMPLE).unwrap();
        assert_eq!((value.m_cost, value.t_cost), (1024, 2));
        assert_eq!(value.salt, b"somesaltsomesalt");
        assert_eq!(value.hash.len(), HASH_LEN);
        assert_eq!(value.to_phc(), SAMPLE);
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let refused = |phc: &str| PasswordValue::from_phc(phc).unwrap_err();
        let swap = |from: &str, to: &str| SAMPLE.replacen(from, to, 1);
        assert_eq!(refused("hunter2"), PasswordError::Format);
        assert_eq!(refused(&swap("argon2id", "argon2i")), PasswordError::Format);
        assert_eq!(refused(&swap("v=19", "v=16")), PasswordError::Format);
        assert_eq!(refused(&swap("p=1", "p=4")), PasswordError::Format);
        assert_eq!(refused(&swap("t=2", "t=2,t=3")), PasswordError::Format);
        assert_eq!(
            refused(&swap("m=1024", "m=1048576")),
            PasswordError::Memory(1_048_576)
        );
        assert_eq!(refused(&swap("t=2", "t=0")), PasswordError::Passes(0));
        assert_eq!(
            refused(&swap("c29tZXNhbHRzb21lc2FsdA", "c2FsdA")),
            PasswordError::Salt(4)
        );
        assert_eq!(refused(&format!("{SAMPLE}AAAA")), PasswordError::Hash(35));
        assert_eq!(refused(&format!("{SAMPLE}$x")), PasswordError::Format);
        assert_eq!(refused(&swap("$c29t", "$!!!!")), PasswordError::Format);
    }
}
