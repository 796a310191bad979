//! Target URL policy: what a link may point at.
//!
//! `snapshots::link::validate_target` is the floor every process relies on
//! (absolute http/https, printable ASCII, at most 8 KiB). On top of it the
//! control plane parses with the `url` crate, which normalises: the host is
//! lowercased and IDNA-encoded (`bücher.de` → `xn--bcher-kva.de`), non-ASCII
//! in the path and query is percent-encoded. It also refuses links back to
//! the service's own short domain (a redirect loop). Blocklisted hosts are
//! checked against the database by [`candidate_hosts`].

use crate::error::ApiError;
use snapshots::link::MAX_TARGET_LEN;

/// A target after normalisation, with its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: String,
    pub host: String,
}

/// Parses, normalises and checks a target URL.
pub fn normalize(raw: &str, short_host: Option<&str>) -> Result<Target, ApiError> {
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
    let url = url::Url::parse(raw).map_err(|e| ApiError::InvalidUrl(format!("{e}: {raw:?}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::InvalidUrl(format!(
            "scheme {:?} is not allowed; only http and https",
            url.scheme()
        )));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| ApiError::InvalidUrl("the target has no host".into()))?
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if short_host.is_some_and(|s| s == host) {
        return Err(ApiError::InvalidUrl(format!(
            "the target points at this service's own short domain {host:?} (a redirect loop)"
        )));
    }
    let normalized = String::from(url);
    snapshots::link::validate_target(&normalized)
        .map_err(|e| ApiError::InvalidUrl(e.to_string()))?;
    Ok(Target {
        url: normalized,
        host,
    })
}

/// The host and each parent domain: `a.b.example.com` → itself, `b.example.com`,
/// `example.com`, `com`. A blocklist entry blocks its subdomains this way.
pub fn candidate_hosts(host: &str) -> Vec<String> {
    let mut out = vec![host.to_owned()];
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

/// Normalises a host given to the blocklist (IDNA, lowercase, no trailing dot).
pub fn normalize_host(raw: &str) -> Result<String, ApiError> {
    let raw = raw.trim().trim_end_matches('.');
    let host = url::Host::parse(raw).map_err(|e| ApiError::invalid_field("host", e))?;
    Ok(host.to_string().to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_idna_and_unicode_paths() {
        let t = normalize("https://Bücher.DE/straße?q=ü", None).unwrap();
        assert_eq!(t.url, "https://xn--bcher-kva.de/stra%C3%9Fe?q=%C3%BC");
        assert_eq!(t.host, "xn--bcher-kva.de");
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
            "",
        ] {
            assert!(
                matches!(normalize(bad, None), Err(ApiError::InvalidUrl(_))),
                "{bad}"
            );
        }
        let long = format!("https://a.com/{}", "x".repeat(MAX_TARGET_LEN));
        assert!(normalize(&long, None).is_err());
        assert!(normalize("https://SHO.rt/abc", Some("sho.rt")).is_err());
        assert!(normalize("https://other.rt/abc", Some("sho.rt")).is_ok());
    }

    #[test]
    fn parents() {
        assert_eq!(
            candidate_hosts("a.b.com"),
            vec!["a.b.com".to_string(), "b.com".into(), "com".into()]
        );
        assert_eq!(normalize_host("Evil.COM.").unwrap(), "evil.com");
    }
}
