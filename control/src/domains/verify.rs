//! Fetching a domain's verification token from the engines that serve it.
//!
//! `GET http://<name>/.well-known/links-domain-verification/<token>`: the
//! engines answer the token once the name points at them, because control
//! published it to every engine as a well-known answer. The body must be the
//! token. The fetch follows no redirect, reads at most [`MAX_BODY`] bytes,
//! gives up after [`TIMEOUT`], and says only whether and why it failed (the
//! body is never returned to the caller: the URL is the caller's choice of
//! name, so control must not become a way to read other hosts).
//!
//! Tests and operators without DNS for a name give `--verify-resolve
//! NAME=ADDR:PORT` (like curl's `--connect-to`): the fetch for that name
//! connects to ADDR:PORT, with `Host: NAME` as usual. Test and operations
//! use only.

pub use crate::config::ResolveOverride;
use std::time::Duration;

/// Longest body read.
pub const MAX_BODY: usize = 4096;
/// Whole fetch, connect to last byte.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Fetches `http://<name><path>` and compares the body with `token`;
/// `Err` says why it did not match.
pub async fn check(
    overrides: &[ResolveOverride],
    name: &str,
    path: &str,
    token: &str,
) -> Result<(), String> {
    let url = format!("http://{name}{path}");
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .user_agent("shortener-control domain verification");
    for o in overrides.iter().filter(|o| o.name == name) {
        builder = builder.resolve(name, o.addr);
    }
    let client = builder
        .build()
        .map_err(|e| format!("no HTTP client: {e}"))?;
    let mut response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("fetching {url} failed: {e}"))?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Err(format!("{url} answered {status}, not 200 with the token"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading {url} failed: {e}"))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            return Err(format!("{url} answered more than {MAX_BODY} bytes"));
        }
    }
    if body.trim_ascii() == token.as_bytes() {
        Ok(())
    } else {
        Err(format!("{url} answered, but not with this domain's token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse() {
        let o: ResolveOverride = "Go.Example.com=127.0.0.1:8080".parse().unwrap();
        assert_eq!(o.name, "go.example.com");
        assert_eq!(
            o.addr,
            "127.0.0.1:8080".parse::<std::net::SocketAddr>().unwrap()
        );
        assert!(
            "go.example.com:80:127.0.0.1"
                .parse::<ResolveOverride>()
                .is_err()
        );
        assert!("a=b".parse::<ResolveOverride>().is_err());
    }
}
