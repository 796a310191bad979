//! Signing secrets and the signature header.
//!
//! A delivery carries `Shortener-Signature: t=<unix seconds>,v1=<hex>`,
//! where `<hex>` is HMAC-SHA256 under the endpoint's secret of
//! `"<t>.<body>"` (the timestamp, a dot, the raw body bytes). The timestamp
//! is signed so a receiver can refuse old deliveries (replays): it checks
//! the HMAC in constant time, then that `t` is within a few minutes of its
//! clock, and deduplicates by `Shortener-Event-Id`. Several `v1=` values
//! may appear in a future rotation with overlap; a receiver accepts when
//! any one matches ([`verify`] does).

use ring::hmac;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "shortener-signature";
/// The header carrying the event's id (stable across retries).
pub const EVENT_ID_HEADER: &str = "shortener-event-id";
/// The header carrying the event's type.
pub const EVENT_TYPE_HEADER: &str = "shortener-event-type";
/// The header carrying the attempt's number (1 for the first).
pub const ATTEMPT_HEADER: &str = "shortener-delivery-attempt";

/// A new signing secret: `whsec_` and 256 random bits in hex.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random generator is available");
    format!("whsec_{}", hex::encode(bytes))
}

/// The hex HMAC-SHA256 of `"<t>.<body>"` under `secret` (the whole secret
/// string, `whsec_` included, as its bytes).
pub fn mac(secret: &str, t: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    hex::encode(ctx.sign().as_ref())
}

/// The signature header's value for `body` sent at unix time `t`.
pub fn header(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", mac(secret, t, body))
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the signature header is not t=<unix>,v1=<hex>")]
    Malformed,
    #[error("no v1 signature matches the body under this secret")]
    Mismatch,
    #[error("the signature's time {t} is more than {tolerance} s from now ({now}): a replay?")]
    Stale { t: i64, now: i64, tolerance: i64 },
}

/// What a receiver does: checks `header` against `body` under `secret`,
/// and that its time is within `tolerance` seconds of `now`. Returns the
/// signed time.
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<i64, VerifyError> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.parse::<i64>().map_err(|_| VerifyError::Malformed)?),
            Some(("v1", v)) => sigs.push(hex::decode(v).map_err(|_| VerifyError::Malformed)?),
            Some(_) => {}
            None => return Err(VerifyError::Malformed),
        }
    }
    let t = t.ok_or(VerifyError::Malformed)?;
    if sigs.is_empty() {
        return Err(VerifyError::Malformed);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    // ring's verify compares in constant time.
    if !sigs.iter().any(|s| hmac::verify(&key, &signed, s).is_ok()) {
        return Err(VerifyError::Mismatch);
    }
    if (now - t).abs() > tolerance {
        return Err(VerifyError::Stale { t, now, tolerance });
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_and_refuses_tampering_and_replays() {
        let secret = new_secret();
        assert!(secret.starts_with("whsec_") && secret.len() == 6 + 64);
        let body = br#"{"id":"evt_1"}"#;
        let h = header(&secret, 1_700_000_000, body);
        assert_eq!(
            verify(&secret, &h, body, 1_700_000_100, 300),
            Ok(1_700_000_000)
        );
        assert_eq!(
            verify(&secret, &h, b"{}", 1_700_000_000, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(&new_secret(), &h, body, 1_700_000_000, 300),
            Err(VerifyError::Mismatch)
        );
        assert!(matches!(
            verify(&secret, &h, body, 1_700_001_000, 300),
            Err(VerifyError::Stale { .. })
        ));
        assert_eq!(
            verify(&secret, "garbage", body, 0, 300),
            Err(VerifyError::Malformed)
        );
        // A changed time breaks the MAC (the time is signed).
        let forged = h.replace("t=1700000000", "t=1700000500");
        assert_eq!(
            verify(&secret, &forged, body, 1_700_000_500, 300),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn known_vector() {
        // printf '%s' '1.{}' | openssl dgst -sha256 -hmac k
        assert_eq!(
            mac("k", 1, b"{}"),
            "3dd49b2593d0f9a349e9e71c4bde3e2b862c2be4003fe9b4ba81332029310158"
        );
    }
}
