//! Target URL policy: what a link may point at.
//!
//! `snapshots::link::validate_target` is the floor every process relies on
//! (absolute http/https, printable ASCII, at most 8 KiB). On top of it the
//! control plane parses with the `url` crate, which normalises: the host is
//! lowercased and IDNA-encoded (`bücher.de` → `xn--bcher-kva.de`), IPv4 in
//! any spelling becomes dotted decimal (`http://2130706433/`, `http://0x7f.1/`
//! → `127.0.0.1`), non-ASCII in the path and query is percent-encoded. Then
//! [`TargetPolicy`] refuses, on the normalised host (trailing dots stripped,
//! IPv6 without brackets, IPv4-mapped IPv6 as IPv4):
//! - user info (`http://user:pass@host/`): credentials in a public link leak,
//!   and `https://trusted.example@evil.example/` disguises the real host;
//! - the service's own short host, on any port (a redirect loop);
//! - loopback names and addresses (`localhost`, `*.localhost`, `127.0.0.0/8`,
//!   `::1`, `0.0.0.0`), private, shared, link-local and other non-routable
//!   addresses: a public short link must not send browsers into the network
//!   of whoever follows it. `allow_private_targets` allows these (tests and
//!   closed deployments); the own-host rule holds even then.
//!
//! A DNS name that *resolves* to a private address is not caught here (the
//! control plane does not resolve targets; engines never fetch them).
//! Blocklisted hosts are checked against the database by [`candidate_hosts`].

use crate::error::ApiError;
use snapshots::link::MAX_TARGET_LEN;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::Host;

/// A target after normalisation, with its host (a domain without trailing
/// dot, an IPv4 address, or an IPv6 address in brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: String,
    pub host: String,
}

/// A host reduced to what identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostKey {
    Domain(String),
    Ip(IpAddr),
}

impl HostKey {
    fn of(host: Host<&str>) -> HostKey {
        match host {
            Host::Domain(d) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                // A bracket-less IPv4 spelled as a domain never reaches here
                // (the url crate parses it), but a literal still might in
                // non-special schemes; parse to be sure.
                match d.parse::<IpAddr>() {
                    Ok(ip) => HostKey::Ip(unmap(ip)),
                    Err(_) => HostKey::Domain(d),
                }
            }
            Host::Ipv4(a) => HostKey::Ip(IpAddr::V4(a)),
            Host::Ipv6(a) => HostKey::Ip(unmap(IpAddr::V6(a))),
        }
    }

    /// The form blocklist entries use.
    fn display(&self) -> String {
        match self {
            HostKey::Domain(d) => d.clone(),
            HostKey::Ip(IpAddr::V4(a)) => a.to_string(),
            HostKey::Ip(IpAddr::V6(a)) => format!("[{a}]"),
        }
    }
}

/// `::ffff:127.0.0.1` is 127.0.0.1.
fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Why an address is not a public one, or `None` when it is.
fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => non_public_v4(a),
        IpAddr::V6(a) => non_public_v6(a),
    }
}

fn non_public_v4(a: Ipv4Addr) -> Option<&'static str> {
    let [first, second, ..] = a.octets();
    if a.is_loopback() {
        Some("a loopback address")
    } else if first == 0 {
        Some("an unspecified (\"this network\") address")
    } else if a.is_private() {
        Some("a private address")
    } else if a.is_link_local() {
        Some("a link-local address")
    } else if first == 100 && (64..128).contains(&second) {
        Some("a shared (carrier-grade NAT) address")
    } else if a.is_multicast() || a.is_broadcast() || first >= 240 {
        Some("a multicast, broadcast or reserved address")
    } else {
        None
    }
}

fn non_public_v6(a: Ipv6Addr) -> Option<&'static str> {
    let first = a.segments()[0];
    if a.is_loopback() {
        Some("a loopback address")
    } else if a.is_unspecified() {
        Some("an unspecified address")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a unique local (private) address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if a.is_multicast() {
        Some("a multicast address")
    } else {
        None
    }
}

/// Loopback names (RFC 6761: `localhost` and everything under it).
fn is_loopback_name(domain: &str) -> bool {
    domain == "localhost"
        || domain.ends_with(".localhost")
        || domain == "localhost.localdomain"
        || domain == "ip6-localhost"
        || domain == "ip6-loopback"
}

/// Why `host` is not a public one (a loopback name, or a loopback,
/// private, link-local or other non-routable address), or `None`. The
/// webhook URL policy (`crate::webhooks::url`) shares these rules.
pub fn non_public_host(host: Host<&str>) -> Option<&'static str> {
    match HostKey::of(host) {
        HostKey::Domain(d) if is_loopback_name(&d) => Some("a loopback name"),
        HostKey::Domain(_) => None,
        HostKey::Ip(ip) => non_public(ip),
    }
}

/// Why a resolved address is not a public one, or `None` (IPv4-mapped IPv6
/// read as IPv4).
pub fn non_public_addr(ip: IpAddr) -> Option<&'static str> {
    non_public(unmap(ip))
}

/// What targets this service accepts.
#[derive(Debug, Clone)]
pub struct TargetPolicy {
    short_host: Option<HostKey>,
    allow_private: bool,
}

impl TargetPolicy {
    /// `short_base` is the public base of short links (its host is ours);
    /// `allow_private` lets loopback and private addresses through.
    pub fn new(short_base: &str, allow_private: bool) -> TargetPolicy {
        let short_host = url::Url::parse(short_base)
            .ok()
            .and_then(|u| u.host().map(|h| HostKey::of(h)));
        TargetPolicy {
            short_host,
            allow_private,
        }
    }

    /// Parses, normalises and checks a target URL.
    pub fn check(&self, raw: &str) -> Result<Target, ApiError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(ApiError::InvalidUrl("the target is empty".into()));
        }
        if raw.len() > MAX_TARGET_LEN {
            return Err(ApiError::InvalidUrl(format!(
                "the target is {} bytes; the limit is {MAX_TARGET_LEN}",
                raw.len()
            )));
        }
        if let Some(c) = raw.chars().find(|c| c.is_control()) {
            return Err(ApiError::InvalidUrl(format!(
                "the target contains the control character U+{:04X}",
                c as u32
            )));
        }
        let url =
            url::Url::parse(raw).map_err(|e| ApiError::InvalidUrl(format!("{e}: {raw:?}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ApiError::InvalidUrl(format!(
                "scheme {:?} is not allowed; only http and https",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ApiError::InvalidUrl(
                "the target carries user info (user:password@host); links may not embed credentials"
                    .into(),
            ));
        }
        let key = url
            .host()
            .map(HostKey::of)
            .filter(|k| !matches!(k, HostKey::Domain(d) if d.is_empty()))
            .ok_or_else(|| ApiError::InvalidUrl("the target has no host".into()))?;
        let host = key.display();
        if self.short_host.as_ref() == Some(&key) {
            return Err(ApiError::InvalidUrl(format!(
                "the target points at this service's own short host {host:?} (a redirect loop)"
            )));
        }
        if !self.allow_private {
            let why = match &key {
                HostKey::Domain(d) if is_loopback_name(d) => Some("a loopback name"),
                HostKey::Domain(_) => None,
                HostKey::Ip(ip) => non_public(*ip),
            };
            if let Some(why) = why {
                return Err(ApiError::InvalidUrl(format!(
                    "the target host {host:?} is {why}; links must point at public hosts"
                )));
            }
        }
        let normalized = String::from(url);
        snapshots::link::validate_target(&normalized)
            .map_err(|e| ApiError::InvalidUrl(e.to_string()))?;
        Ok(Target {
            url: normalized,
            host,
        })
    }
}

/// The host and each parent domain: `a.b.example.com` → itself, `b.example.com`,
/// `example.com`, `com`. A blocklist entry blocks its subdomains this way. An
/// address has no parents.
pub fn candidate_hosts(host: &str) -> Vec<String> {
    let mut out = vec![host.to_owned()];
    if host.starts_with('[') || host.parse::<IpAddr>().is_ok() {
        return out;
    }
    let mut rest = host;
    while let Some((_, parent)) = rest.split_once('.') {
        if parent.is_empty() {
            break;
        }
        out.push(parent.to_owned());
        rest = parent;
    }
    out
}

/// Longest host name (RFC 1035), and so the longest blocklist entry.
pub const MAX_HOST_LEN: usize = 253;

/// Normalises a host given to the blocklist (IDNA, lowercase, no trailing dot,
/// addresses as [`Target::host`] spells them).
pub fn normalize_host(raw: &str) -> Result<String, ApiError> {
    let raw = raw.trim().trim_end_matches('.');
    if raw.len() > MAX_HOST_LEN {
        return Err(ApiError::invalid_field(
            "host",
            format!("{} bytes; the limit is {MAX_HOST_LEN}", raw.len()),
        ));
    }
    let host = Host::parse(raw).map_err(|e| ApiError::invalid_field("host", e))?;
    let key = HostKey::of(match &host {
        Host::Domain(d) => Host::Domain(d.as_str()),
        Host::Ipv4(a) => Host::Ipv4(*a),
        Host::Ipv6(a) => Host::Ipv6(*a),
    });
    Ok(key.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public() -> TargetPolicy {
        TargetPolicy::new("https://Sho.RT", false)
    }

    #[test]
    fn normalises_idna_and_unicode_paths() {
        let t = public().check("https://Bücher.DE/straße?q=ü").unwrap();
        assert_eq!(t.url, "https://xn--bcher-kva.de/stra%C3%9Fe?q=%C3%BC");
        assert_eq!(t.host, "xn--bcher-kva.de");
        assert_eq!(public().check("https://a.com./").unwrap().host, "a.com");
    }

    #[test]
    fn refusals() {
        for bad in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "ftp://x.com",
            "not a url",
            "https://a.com/\r\nSet-Cookie: x",
            "https://a.com/\0",
            "",
        ] {
            assert!(
                matches!(public().check(bad), Err(ApiError::InvalidUrl(_))),
                "{bad}"
            );
        }
        let long = format!("https://a.com/{}", "x".repeat(MAX_TARGET_LEN));
        assert!(public().check(&long).is_err());
        assert!(public().check("https://other.rt/abc").is_ok());
    }

    #[test]
    fn user_info_is_refused() {
        for bad in [
            "http://user:pass@a.com/",
            "http://user@a.com/",
            "https://trusted.example:x@evil.example/",
        ] {
            let err = public().check(bad).unwrap_err().to_string();
            assert!(err.contains("user info"), "{bad}: {err}");
        }
    }

    #[test]
    fn own_host_in_every_spelling() {
        for bad in [
            "https://SHO.rt/abc",
            "https://sho.rt./abc",
            "http://sho.rt:8080/abc",
            "HTTPS://Sho.Rt.../x",
        ] {
            let err = public().check(bad).unwrap_err().to_string();
            assert!(err.contains("own short host"), "{bad}: {err}");
        }
        // An address as the short host, compared as an address.
        let local = TargetPolicy::new("http://[::1]:8080", true);
        assert!(local.check("http://[0:0:0:0:0:0:0:1]/x").is_err());
        assert!(
            local.check("http://127.0.0.1/x").is_ok(),
            "allowed: private"
        );
    }

    #[test]
    fn loopback_and_private_unless_allowed() {
        for bad in [
            "http://localhost/",
            "http://LOCALHOST./",
            "http://api.localhost:3000/",
            "http://127.0.0.1/",
            "http://127.1.2.3/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://[::]/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://255.255.255.255/",
        ] {
            let err = public().check(bad).unwrap_err().to_string();
            assert!(err.contains("public hosts"), "{bad}: {err}");
            assert!(
                TargetPolicy::new("https://sho.rt", true).check(bad).is_ok(),
                "allowed: {bad}"
            );
        }
        for ok in [
            "http://8.8.8.8/",
            "http://[2001:4860:4860::8888]/",
            "http://notlocalhost.com/",
            "http://172.32.0.1/",
        ] {
            assert!(public().check(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn parents() {
        assert_eq!(
            candidate_hosts("a.b.com"),
            vec!["a.b.com".to_string(), "b.com".into(), "com".into()]
        );
        assert_eq!(candidate_hosts("10.0.0.1"), vec!["10.0.0.1".to_string()]);
        assert_eq!(normalize_host("Evil.COM.").unwrap(), "evil.com");
        assert_eq!(normalize_host("[::1]").unwrap(), "[::1]");
        assert!(normalize_host("a\0b").is_err());
        assert!(normalize_host(&"a".repeat(300)).is_err());
        assert_eq!(
            public().check("http://[::ffff:8.8.8.8]/").unwrap().host,
            "8.8.8.8"
        );
    }
}
