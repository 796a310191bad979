//! Passwords: the policy and argon2id hashing.
//!
//! **Policy** (NIST SP 800-63B, 5.1.1): at least 12 characters, at most
//! 1024 bytes (a bound on hashing work, not a rule people meet), and no
//! composition rules: length is what makes a password strong, and forced
//! digits and symbols make passwords predictable. Any character is allowed,
//! spaces included.
//!
//! **Hashing**: argon2id, version 0x13, m = 19 MiB, t = 2, p = 1: OWASP's
//! first recommended setting (Password Storage Cheat Sheet), a memory-hard
//! cost that makes each guess cost an attacker 19 MiB for tens of
//! milliseconds, at a price a sign-in page affords. The hash is a PHC string
//! that carries its own parameters, so raising them later leaves old hashes
//! verifiable. Hashing runs on tokio's blocking pool (`spawn_blocking`),
//! never on the runtime's workers, and at most one hash per CPU at a time
//! (a semaphore): without that bound, a burst of sign-ins from many
//! addresses would queue hundreds of 19 MiB blocking jobs at once.
//!
//! **No user, same work**: a sign-in with an unknown e-mail verifies the
//! password against a dummy hash with the same parameters, so it costs the
//! same time as a wrong password. [`crate::metrics::Metrics::password_hashes`]
//! counts every argon2 run, which is how the tests check both paths hashed.

use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Fewest characters (Unicode scalar values) of a new password.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Most bytes of any password, new or presented.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// argon2 memory cost, KiB (19 MiB).
pub const M_COST_KIB: u32 = 19 * 1024;
/// argon2 passes.
pub const T_COST: u32 = 2;
/// argon2 lanes.
pub const P_COST: u32 = 1;

/// Checks a password someone wants to set.
pub fn check_new(field: &str, password: &str) -> ApiResult<()> {
    check_presented(field, password)?;
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(ApiError::invalid_field(
            field,
            format!("{chars} characters; a password has at least {MIN_PASSWORD_CHARS}"),
        ));
    }
    Ok(())
}

/// Checks a password presented to sign in (only its size).
pub fn check_presented(field: &str, password: &str) -> ApiResult<()> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::invalid_field(
            field,
            format!(
                "{} bytes; a password has at most {MAX_PASSWORD_BYTES}",
                password.len()
            ),
        ));
    }
    Ok(())
}

/// The hasher the service shares.
#[derive(Debug)]
pub struct Passwords {
    params: Params,
    permits: Semaphore,
    /// A PHC string with the current parameters that no password matches
    /// knowingly (its salt and output are fixed bytes, not a hash of a known
    /// password), for sign-ins with an unknown e-mail.
    dummy: String,
    metrics: Arc<Metrics>,
}

impl Passwords {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        let params =
            Params::new(M_COST_KIB, T_COST, P_COST, None).expect("argon2 parameters in range");
        let permits = std::thread::available_parallelism().map_or(2, |n| n.get());
        // 16 bytes of salt and 32 of output (as real hashes), base64 without padding.
        let dummy = format!(
            "$argon2id$v=19$m={M_COST_KIB},t={T_COST},p={P_COST}$c2hvcnRlbmVyLWR1bW15IQ$\
             bm8gcGFzc3dvcmQgaGFzaGVzIHRvIHRoZXNlIDMyQiE"
        );
        Passwords {
            params,
            permits: Semaphore::new(permits),
            dummy,
            metrics,
        }
    }

    fn argon2(params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    /// Runs `f` on the blocking pool, one hash per CPU at a time.
    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        self.metrics.password_hashes.inc();
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| ApiError::Internal(e.into()))
    }

    /// The PHC string of `password` with a fresh random salt.
    pub async fn hash(&self, password: &str) -> ApiResult<String> {
        let password = password.to_owned();
        let params = self.params.clone();
        self.run(move || {
            Self::argon2(params)
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
        })
        .await?
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("argon2: {e}")))
    }

    /// The PHC string of a link's password (`links::password`'s lighter
    /// parameters, which engines check), on the same bounded pool.
    pub async fn hash_link(&self, password: &str) -> ApiResult<String> {
        let password = password.to_owned();
        self.run(move || {
            Self::argon2(crate::links::password::params())
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
        })
        .await?
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("argon2: {e}")))
    }

    /// Whether `phc` was made with other settings than today's (an older,
    /// cheaper setting): sign-in then rehashes the password it just
    /// verified, so raising the parameters upgrades hashes as people sign in.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = argon2::PasswordHash::new(phc) else {
            return true;
        };
        parsed.algorithm.as_str() != "argon2id"
            || Params::try_from(&parsed).map_or(true, |p| {
                (p.m_cost(), p.t_cost(), p.p_cost())
                    != (
                        self.params.m_cost(),
                        self.params.t_cost(),
                        self.params.p_cost(),
                    )
            })
    }

    /// Whether `password` matches `phc`; with no hash (no such user), the
    /// same work against the dummy, and `false`.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> ApiResult<bool> {
        let known = phc.is_some();
        let phc = phc.unwrap_or(&self.dummy).to_owned();
        let password = password.to_owned();
        let params = self.params.clone();
        let ok = self
            .run(move || {
                Self::argon2(params)
                    .verify_password(password.as_bytes(), phc.as_str())
                    .is_ok()
            })
            .await?;
        Ok(known && ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert!(check_new("password", "correct horse").is_ok());
        assert!(check_new("password", "short").is_err());
        assert!(
            check_new("password", "ééééééééééé").is_err(),
            "11 characters"
        );
        assert!(
            check_new("password", "éééééééééééé").is_ok(),
            "12 characters, 24 bytes"
        );
        assert!(check_new("password", &"x".repeat(1025)).is_err());
        assert!(check_presented("password", "x").is_ok());
    }

    #[tokio::test]
    async fn hash_verify_and_the_dummy() {
        let metrics = Arc::new(Metrics::default());
        let p = Passwords::new(metrics.clone());
        let phc = p.hash("correct horse battery").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(p.verify("correct horse battery", Some(&phc)).await.unwrap());
        assert!(!p.verify("wrong horse battery", Some(&phc)).await.unwrap());
        assert!(!p.verify("correct horse battery", None).await.unwrap());
        assert_eq!(
            metrics.password_hashes.get(),
            4,
            "the dummy path hashed too"
        );
        assert!(!p.needs_rehash(&phc));
        let cheap = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"correct horse battery")
        .unwrap()
        .to_string();
        assert!(
            p.verify("correct horse battery", Some(&cheap))
                .await
                .unwrap()
        );
        assert!(p.needs_rehash(&cheap));
        assert!(p.needs_rehash("not a hash"));
        // The dummy is a well-formed hash with the current parameters.
        let parsed = argon2::PasswordHash::new(&p.dummy).unwrap();
        assert_eq!(
            Params::try_from(&parsed).unwrap().m_cost(),
            p.params.m_cost()
        );
    }
}
