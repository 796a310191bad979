//! Requests are resolved by (Host, code) on the real binary: the same code on
//! two domains, unverified domains not served, per-domain root and
//! not-found redirects, the plain-HTTP 308, Host normalisation, well-known
//! answers for any host, and what a host that names no domain gets.
mod common;

use common::{Engine, Response, parse_responses, raw};
use snapshots::{Domain, HttpMode, Link, SnapshotBuilder, WellKnown};
use std::path::Path;

const TOKEN_PATH: &str = "/.well-known/links-domain-verification/tok-123";

fn domain(id: u32, name: &str, verified: bool) -> Domain {
    Domain {
        id,
        verified,
        ..Domain::default_domain(name)
    }
}

/// Default domain `sho.rt`, verified `go.brand.example` (7) with every
/// setting, pending `pending.example` (8) with its token; `promo` on all
/// three.
fn write(path: &Path, default_name: &str) {
    let mut builder = SnapshotBuilder::new(1);
    builder
        .push_domain(Domain::default_domain(default_name))
        .unwrap();
    builder
        .push_domain(Domain {
            root_redirect: Some("https://brand.example/".into()),
            not_found_redirect: Some("https://brand.example/missing".into()),
            hsts_max_age: Some(600),
            ..domain(7, "go.brand.example", true)
        })
        .unwrap();
    builder
        .push_domain(Domain {
            http_mode: HttpMode::RedirectHttps,
            ..domain(9, "secure.example", true)
        })
        .unwrap();
    builder
        .push_domain(domain(8, "pending.example", false))
        .unwrap();
    builder
        .push_well_known(WellKnown {
            host: "pending.example".into(),
            path: TOKEN_PATH.into(),
            body: "tok-123".into(),
        })
        .unwrap();
    for (id, target) in [
        (0, "https://t.example/default"),
        (7, "https://t.example/brand"),
        (8, "https://t.example/pending"),
        (9, "https://t.example/secure"),
    ] {
        builder
            .push(Link {
                domain: id,
                ..Link::new("promo", target)
            })
            .unwrap();
    }
    builder.write_to(path).unwrap();
}

fn get(engine: &Engine, host: Option<&str>, path: &str) -> Response {
    let host = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
    let version = if host.is_empty() { "1.0" } else { "1.1" };
    let request = format!("GET {path} HTTP/{version}\r\n{host}Connection: close\r\n\r\n");
    let bytes = raw(engine.listen, request.as_bytes());
    let mut parsed = parse_responses(&bytes);
    assert_eq!(parsed.len(), 1, "{}", String::from_utf8_lossy(&bytes));
    parsed.remove(0)
}

fn answer(engine: &Engine, host: Option<&str>, path: &str) -> (u16, Option<String>) {
    let r = get(engine, host, path);
    (r.status, r.header("location").map(str::to_owned))
}

fn found(target: &str) -> (u16, Option<String>) {
    (301, Some(target.to_owned()))
}

#[test]
fn requests_resolve_by_host_and_code() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.snap");
    write(&path, "sho.rt");
    let engine = Engine::start(&["--snapshot", path.to_str().unwrap()]);

    // The same code on three served domains: three targets.
    assert_eq!(
        answer(&engine, Some("sho.rt"), "/promo"),
        found("https://t.example/default")
    );
    assert_eq!(
        answer(&engine, Some("go.brand.example"), "/promo"),
        found("https://t.example/brand")
    );
    // Host normalisation: case, port, one trailing dot.
    for host in [
        "GO.Brand.Example",
        "go.brand.example:8080",
        "go.brand.example.",
        "Go.Brand.Example.:80",
    ] {
        assert_eq!(
            answer(&engine, Some(host), "/promo"),
            found("https://t.example/brand"),
            "{host}"
        );
    }
    // No Host (HTTP/1.0) or an IP literal: the default domain.
    assert_eq!(
        answer(&engine, None, "/promo"),
        found("https://t.example/default")
    );
    let ip = engine.listen.to_string();
    assert_eq!(
        answer(&engine, Some(&ip), "/promo"),
        found("https://t.example/default")
    );
    assert_eq!(
        answer(&engine, Some("[::1]:80"), "/promo"),
        found("https://t.example/default")
    );

    // A pending domain is not served, and neither is a name the deployment
    // does not know (the default domain is named, so `auto` answers 404).
    assert_eq!(answer(&engine, Some("pending.example"), "/promo").0, 404);
    assert_eq!(answer(&engine, Some("other.example"), "/promo").0, 404);
    assert_eq!(answer(&engine, Some("bad_host!"), "/promo").0, 404);
    // ...but its well-known answer is: that is how it gets verified.
    let token = get(&engine, Some("Pending.Example"), TOKEN_PATH);
    assert_eq!(token.status, 200);
    assert_eq!(token.body, b"tok-123");
    assert_eq!(token.header("content-type"), Some("text/plain"));
    assert_eq!(
        get(&engine, Some("go.brand.example"), TOKEN_PATH).status,
        302
    );
    assert_eq!(get(&engine, Some("sho.rt"), TOKEN_PATH).status, 404);

    // Per-domain root and not-found redirects; the default domain has none.
    assert_eq!(
        answer(&engine, Some("go.brand.example"), "/"),
        (302, Some("https://brand.example/".into()))
    );
    assert_eq!(
        answer(&engine, Some("go.brand.example"), "/nope"),
        (302, Some("https://brand.example/missing".into()))
    );
    assert_eq!(answer(&engine, Some("sho.rt"), "/nope").0, 404);
    assert_eq!(answer(&engine, Some("sho.rt"), "/").0, 404);
    // HSTS only over TLS: never on this plain listener.
    let plain = get(&engine, Some("go.brand.example"), "/promo");
    assert_eq!(plain.header("strict-transport-security"), None);

    // redirect-https: plain HTTP gets a 308 to the same path on https.
    assert_eq!(
        answer(&engine, Some("secure.example:8080"), "/promo?utm=1"),
        (308, Some("https://secure.example/promo?utm=1".into()))
    );

    let metrics = engine.metrics();
    let unknown: f64 =
        common::metric_values(&metrics, "engine_unknown_host_requests_total", "core")
            .iter()
            .sum();
    assert_eq!(unknown, 3.0, "pending, other and an invalid host");
}

/// A deployment that has not configured domains (every snapshot before
/// domains, the CLI's) keeps answering any host as before; once it has any
/// domain, even pending, an unknown name is not answered with the default
/// domain's links, unless the deployment says so.
#[test]
fn without_domains_any_host_is_the_default_domain() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.snap");
    common::write_snapshot(
        &plain,
        1,
        &[Link::new("promo", "https://t.example/default")],
    );
    let engine = Engine::start(&["--snapshot", plain.to_str().unwrap()]);
    assert_eq!(
        answer(&engine, Some("anything.example"), "/promo"),
        found("https://t.example/default")
    );
    drop(engine);

    let with_domains = dir.path().join("d.snap");
    write(&with_domains, "");
    let engine = Engine::start(&["--snapshot", with_domains.to_str().unwrap()]);
    assert_eq!(answer(&engine, Some("pending.example"), "/promo").0, 404);
    assert_eq!(answer(&engine, Some("anything.example"), "/promo").0, 404);
    assert_eq!(
        answer(&engine, Some("127.0.0.1"), "/promo"),
        found("https://t.example/default")
    );
    assert_eq!(
        answer(&engine, Some("go.brand.example"), "/promo"),
        found("https://t.example/brand")
    );
    drop(engine);

    let engine = Engine::start(&[
        "--snapshot",
        with_domains.to_str().unwrap(),
        "--unknown-host",
        "default-domain",
    ]);
    assert_eq!(
        answer(&engine, Some("anything.example"), "/promo"),
        found("https://t.example/default")
    );
    assert_eq!(
        answer(&engine, Some("pending.example"), "/promo"),
        found("https://t.example/default"),
        "the operator asked for it"
    );
}
