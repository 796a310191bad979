//! The one address a run may load: loopback only.
//!
//! This workplace forbids load on any non-loopback address, so the check is
//! in the library, not the CLI: every [`crate::load::run`] goes through
//! [`loopback`], and a name that resolves to anything else is refused.

use anyhow::{Context, bail};
use std::net::{SocketAddr, ToSocketAddrs};

/// Resolves `addr` (`127.0.0.1:8080`, `[::1]:8080`, `localhost:8080`, with or
/// without a leading `http://` and trailing `/`) and refuses it unless every
/// address it names is in 127.0.0.0/8 or is ::1.
pub fn loopback(addr: &str) -> anyhow::Result<SocketAddr> {
    let bare = addr.strip_prefix("http://").unwrap_or(addr);
    let bare = bare.trim_end_matches('/');
    if bare.contains('/') {
        bail!("{addr:?}: give host:port only, the paths come from the key list");
    }
    let resolved: Vec<SocketAddr> = bare
        .to_socket_addrs()
        .with_context(|| format!("{addr:?} is not host:port"))?
        .collect();
    let Some(first) = resolved.first().copied() else {
        bail!("{addr:?} resolves to no address");
    };
    if let Some(bad) = resolved.iter().find(|a| !a.ip().is_loopback()) {
        bail!(
            "refusing to load {bad}: only loopback targets (127.0.0.0/8, ::1) are allowed on this machine"
        );
    }
    Ok(first)
}

/// The `Host` header value for `addr`.
pub fn host_header(addr: &SocketAddr) -> String {
    addr.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_loopback_forms() {
        assert_eq!(loopback("127.0.0.1:80").unwrap().port(), 80);
        assert_eq!(
            loopback("http://127.1.2.3:8080/").unwrap().to_string(),
            "127.1.2.3:8080"
        );
        assert!(loopback("[::1]:9").unwrap().ip().is_loopback());
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "10.0.0.1:80",
            "0.0.0.0:80",
            "[::]:80",
            "192.168.1.1:8080",
            "8.8.8.8:53",
        ] {
            let err = loopback(bad).unwrap_err().to_string();
            assert!(err.contains("only loopback"), "{bad}: {err}");
        }
        assert!(loopback("127.0.0.1").is_err(), "a port is required");
        assert!(loopback("127.0.0.1:80/x").is_err());
    }
}
