//! The DNS proof of a domain: a TXT record at `_links-verification.<name>`
//! holding the domain's token. Only whoever controls the name's zone can add
//! it, so it proves more than the HTTP token (which proves only that the
//! name routes to the engines, as a dangling CNAME someone left behind also
//! does).
//!
//! Looked up with hickory-resolver at `--dns-server` or the system's
//! resolvers, with a short timeout and no cache (a record just added must
//! be seen at once). The answer says only whether and why it failed.

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use std::net::SocketAddr;
use std::time::Duration;

/// The label in front of the domain's name.
pub const TXT_LABEL: &str = "_links-verification";

/// Whole lookup, retries included.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The name the TXT record goes on.
pub fn record_name(domain: &str) -> String {
    format!("{TXT_LABEL}.{domain}")
}

fn resolver(server: Option<SocketAddr>) -> Result<TokioResolver, String> {
    let mut opts = ResolverOpts::default();
    opts.timeout = Duration::from_secs(2);
    opts.attempts = 2;
    opts.cache_size = 0;
    let builder = match server {
        Some(addr) => {
            let servers = NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true);
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, Vec::new(), servers),
                TokioConnectionProvider::default(),
            )
        }
        None => TokioResolver::builder_tokio()
            .map_err(|e| format!("no DNS resolver configured on this host: {e}"))?,
    };
    Ok(builder.with_options(opts).build())
}

/// Looks up the TXT records of `_links-verification.<domain>` and looks
/// for `token` among them; `Err` says why it is not there.
pub async fn check(server: Option<SocketAddr>, domain: &str, token: &str) -> Result<(), String> {
    let name = record_name(domain);
    // Absolute: no search domain of the host is appended.
    let fqdn = format!("{name}.");
    let resolver = resolver(server)?;
    let lookup = tokio::time::timeout(TIMEOUT, resolver.txt_lookup(fqdn))
        .await
        .map_err(|_| format!("looking up TXT {name} took longer than {TIMEOUT:?}"))?
        .map_err(|e| format!("no TXT record at {name} ({e})"))?;
    let mut seen = Vec::new();
    for txt in lookup.iter() {
        // One record may be split in several strings; they are one value.
        let value: String = txt
            .txt_data()
            .iter()
            .map(|part| String::from_utf8_lossy(part))
            .collect();
        if value.trim() == token {
            return Ok(());
        }
        seen.push(value);
    }
    Err(format!(
        "the TXT records at {name} do not hold the token (found {})",
        seen.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_is_under_the_label() {
        assert_eq!(
            record_name("go.brand.example"),
            "_links-verification.go.brand.example"
        );
    }
}
