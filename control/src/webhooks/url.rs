//! What a webhook URL may be (SSRF): control itself makes these requests,
//! from inside the deployment's network, to addresses tenants choose.
//!
//! By default a URL must be `https`, without user info or fragment, on a
//! host that is a public address or a DNS name with a dot that is not a
//! loopback name (`crate::target`'s rules: loopback, private, shared,
//! link-local and reserved addresses are refused). A name is checked again
//! at every connection: [`PublicResolver`] drops the non-public addresses a
//! name resolves to (a name that points inside, or is rebound there after
//! the check, gets no connection). `allow_private_webhooks` lifts all of
//! this, plain http included, for development and tests.

use crate::error::{ApiError, ApiResult};
use hyper_util::client::legacy::connect::dns::Name;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Longest webhook URL, bytes.
pub const MAX_URL_LEN: usize = 2048;

/// The URL rules of this deployment.
#[derive(Debug, Clone, Copy)]
pub struct UrlPolicy {
    pub allow_private: bool,
}

impl UrlPolicy {
    /// Parses and checks `raw`; the normalised URL, or a 400 naming `url`.
    pub fn check(&self, raw: &str) -> ApiResult<String> {
        let bad = |why: String| ApiError::invalid_field("url", why);
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(bad("is empty".into()));
        }
        if raw.len() > MAX_URL_LEN {
            return Err(bad(format!(
                "is {} bytes; the limit is {MAX_URL_LEN}",
                raw.len()
            )));
        }
        let url = url::Url::parse(raw).map_err(|e| bad(format!("is not a URL ({e})")))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_private => {}
            "http" => return Err(bad("must be https (deliveries carry signed data)".into())),
            other => return Err(bad(format!("scheme {other:?} is not https"))),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not carry user info (user:password@host)".into()));
        }
        if url.fragment().is_some() {
            return Err(bad("must not have a #fragment".into()));
        }
        let host = url.host().ok_or_else(|| bad("has no host".into()))?;
        if !self.allow_private {
            if let Some(why) = crate::target::non_public_host(host.clone()) {
                return Err(bad(format!(
                    "host {host} is {why}; webhooks go to public hosts only"
                )));
            }
            if let url::Host::Domain(d) = host
                && !d.trim_end_matches('.').contains('.')
            {
                return Err(bad(format!(
                    "host {d:?} is a single-label (internal) name; webhooks go to public hosts only"
                )));
            }
        }
        Ok(url.into())
    }
}

/// Resolves like the system does, then keeps only public addresses (all of
/// them with `allow_private`). A name left with none is an error, so the
/// delivery fails (and is retried) instead of connecting inside. It is the
/// resolver of the webhook client's connector (a `tower` service of names).
#[derive(Debug, Clone, Copy)]
pub struct PublicResolver {
    pub allow_private: bool,
}

type Resolving =
    Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, std::io::Error>> + Send>>;

impl tower_service::Service<Name> for PublicResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow_private || crate::target::non_public_addr(a.ip()).is_none())
                .collect();
            if addrs.is_empty() {
                return Err(std::io::Error::other(format!(
                    "{host} resolves to no public address (webhooks go to public hosts only)"
                )));
            }
            Ok(addrs.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: UrlPolicy, url: &str) -> bool {
        policy.check(url).is_err()
    }

    #[test]
    fn public_https_only_by_default() {
        let p = UrlPolicy {
            allow_private: false,
        };
        assert_eq!(
            p.check("https://hooks.example.com/in").unwrap(),
            "https://hooks.example.com/in"
        );
        for url in [
            "http://hooks.example.com/in",
            "ftp://hooks.example.com/",
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://10.1.2.3/",
            "https://192.168.0.1/",
            "https://169.254.169.254/latest/meta-data/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://2130706433/",
            "https://localhost/",
            "https://a.localhost/",
            "https://intranet/",
            "https://u:p@hooks.example.com/",
            "https://hooks.example.com/#x",
            "",
            "not a url",
        ] {
            assert!(refused(p, url), "{url} should be refused");
        }
        let e = p.check("https://10.0.0.1/").unwrap_err();
        assert!(e.to_string().starts_with("url: "), "{e}");
    }

    #[test]
    fn development_allows_http_and_private() {
        let p = UrlPolicy {
            allow_private: true,
        };
        p.check("http://127.0.0.1:9000/hook").unwrap();
        p.check("http://localhost/hook").unwrap();
        assert!(refused(p, "ftp://127.0.0.1/"));
    }
}
