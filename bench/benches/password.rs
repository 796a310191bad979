//! Password-protected links on the engine: what one password check costs a
//! core with the parameters control hashes link passwords with (argon2id,
//! m = 4 MiB, t = 1), and the answers around it: the form for a visitor
//! without a pass, and the redirect for one with a valid pass (an HMAC),
//! beside a plain link's redirect in the same run. The check's cost times
//! the engine's cap on checks per second is the share of a core guessing
//! can take (docs/password-links.md).
//!
//! `cargo bench -p bench --bench password`.

use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
use criterion::{Criterion, criterion_group, criterion_main};
use engine::config::Config;
use engine::core::Core;
use engine::core::gate::{Gate, Verifier, Visitor, pass_cookie};
use engine::core::session::answer;
use engine::http::request::{Parse, parse};
use engine::metrics::CoreMetrics;
use snapshots::password::PasswordValue;
use snapshots::{Link, Snapshot, SnapshotBuilder};
use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Arc;

/// Control's parameters for link passwords (`control::links::password`).
const M_COST_KIB: u32 = 4 * 1024;
const T_COST: u32 = 1;

fn phc(password: &str) -> String {
    let params = Params::new(M_COST_KIB, T_COST, 1, Some(32)).unwrap();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_with_salt(password.as_bytes(), b"benchsaltbenchsalt")
        .unwrap()
        .to_string()
}

fn bench(c: &mut Criterion) {
    let value = PasswordValue::from_phc(&phc("correct horse")).unwrap();
    let verifier = Verifier {
        m_cost: value.m_cost,
        t_cost: value.t_cost,
        salt: &value.salt,
        hash: &value.hash,
    };
    let mut gate = Gate::default();
    assert!(gate.verify(verifier, b"correct horse"));
    let mut group = c.benchmark_group("password");
    group.sample_size(20);
    group.bench_function("check (argon2id m=4MiB t=1)", |b| {
        b.iter(|| black_box(gate.verify(verifier, black_box(b"wrong horse"))))
    });
    group.finish();

    // The answers, through the request path.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.snap");
    let mut builder = SnapshotBuilder::new(1);
    builder
        .push(Link {
            password_hash: Some(value.to_phc()),
            ..Link::new("gated", "https://brand.example/preview")
        })
        .unwrap();
    builder
        .push(Link::new("plain", "https://brand.example/"))
        .unwrap();
    builder.write_to(&path).unwrap();
    let snapshot = Arc::new(Snapshot::open(&path).unwrap());
    let core = Core::new(
        0,
        &Config::default(),
        Arc::new(CoreMetrics::new()),
        Some(snapshot),
        None,
    );
    let peer: IpAddr = "192.0.2.1".parse().unwrap();
    let now = core.clock.secs();
    let visitor = Visitor {
        domain: 0,
        code: b"gated",
        client: peer,
        form: None,
        post: false,
        cookie: b"",
        now,
        now_ms: now as u64 * 1000,
    };
    let mut line = Vec::new();
    pass_cookie(verifier, &visitor, b"/gated", false, &mut line);
    let text = String::from_utf8(line).unwrap();
    let cookie = text["Set-Cookie: ".len()..].split(';').next().unwrap();
    let requests = [
        (
            "plain redirect",
            "GET /plain HTTP/1.1\r\nHost: sho.rt\r\n\r\n".to_owned(),
        ),
        (
            "form",
            "GET /gated HTTP/1.1\r\nHost: sho.rt\r\n\r\n".to_owned(),
        ),
        (
            "redirect with a pass",
            format!("GET /gated HTTP/1.1\r\nHost: sho.rt\r\nCookie: {cookie}\r\n\r\n"),
        ),
    ];
    let mut group = c.benchmark_group("gated answers");
    let mut out = Vec::with_capacity(8192);
    for (name, raw) in &requests {
        let Parse::Complete(req) = parse(raw.as_bytes(), &core.limits) else {
            panic!("parse");
        };
        out.clear();
        let (status, _) = answer(&core, &req, peer, 1, false, &mut out);
        assert!(matches!(status, 200 | 301), "{name}: {status}");
        group.bench_function(*name, |b| {
            b.iter(|| {
                out.clear();
                let Parse::Complete(req) = parse(black_box(raw.as_bytes()), &core.limits) else {
                    panic!("parse");
                };
                black_box(answer(&core, &req, peer, 1, false, &mut out))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
