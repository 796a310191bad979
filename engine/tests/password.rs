//! Password-protected links on the running engine (the suite runs once per
//! I/O backend): the form instead of the redirect, a wrong password refused
//! with the form again, the right one answered `303` to the target with a
//! pass cookie that lets the same visitor straight through afterwards, a
//! body that arrives in pieces waited for, guessing refused with `429`
//! before any argon2 work, and links without a password as before.

mod common;

use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
use common::{Engine, Response, parse_responses, raw, read_responses, snapshot_dir};
use snapshots::{Link, RedirectStatus};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

const PASSWORD: &str = "open sesame";

/// A verifier as control makes one, with small parameters for the test.
fn verifier(password: &str) -> String {
    let params = Params::new(256, 1, 1, Some(32)).unwrap();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_with_salt(password.as_bytes(), b"saltsaltsaltsalt")
        .unwrap()
        .to_string()
}

fn start() -> (tempfile::TempDir, Engine) {
    let links = vec![
        Link {
            status: RedirectStatus::Found,
            password_hash: Some(verifier(PASSWORD)),
            ..Link::new("pw", "https://t.example/secret")
        },
        Link {
            password_hash: Some(verifier("other")),
            ..Link::new("pw2", "https://t.example/other")
        },
        Link::new("open", "https://t.example/open"),
    ];
    let (dir, path) = snapshot_dir(1, &links);
    let engine = Engine::start(&[
        "--snapshot",
        path.to_str().unwrap(),
        "--cores",
        "1",
        "--no-clicks",
        "--permanent-max-age",
        "86400",
        // The test names its visitors' addresses.
        "--trusted-proxy",
        "127.0.0.1",
    ]);
    (dir, engine)
}

fn get(engine: &Engine, path: &str, headers: &str) -> Response {
    let bytes = raw(
        engine.listen,
        format!("GET /{path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n").as_bytes(),
    );
    parse_responses(&bytes).remove(0)
}

fn post(engine: &Engine, path: &str, headers: &str, body: &str) -> Response {
    let bytes = raw(
        engine.listen,
        format!(
            "POST /{path} HTTP/1.1\r\nHost: t\r\n{headers}\
             Content-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    parse_responses(&bytes).remove(0)
}

fn text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// The `name=value` of a `Set-Cookie`, for sending back.
fn cookie_of(r: &Response) -> String {
    let set = r.header("set-cookie").expect("a pass cookie");
    set.split(';').next().unwrap().to_owned()
}

#[test]
fn the_form_then_the_right_password_then_the_pass() {
    let (_dir, engine) = start();
    // The form, not the redirect; nothing loads from elsewhere.
    let form = get(&engine, "pw", "");
    assert_eq!(form.status, 200);
    assert_eq!(form.header("location"), None);
    assert_eq!(
        form.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(form.header("cache-control"), Some("no-store"));
    let csp = form.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("form-action 'self'"),
        "{csp}"
    );
    let page = text(&form);
    assert!(page.contains(r#"<form method="post">"#), "{page}");
    assert!(page.contains(r#"name="password""#), "{page}");
    assert!(
        !page.contains("t.example"),
        "the page must not reveal the target"
    );
    // HEAD: the same head, no body.
    let head = raw(
        engine.listen,
        b"HEAD /pw HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "{head}");

    // A wrong password: the form again, saying so.
    let wrong = post(&engine, "pw", "", "password=open+says+me");
    assert_eq!(wrong.status, 403);
    assert!(text(&wrong).contains("Wrong password."));
    assert_eq!(wrong.header("set-cookie"), None);
    // Another link's password is wrong here.
    assert_eq!(post(&engine, "pw", "", "password=other").status, 403);

    // The right one (form-encoded): 303 to the target, with a pass.
    let right = post(&engine, "pw?utm=1", "", "password=open%20sesame");
    assert_eq!(right.status, 303);
    assert_eq!(right.header("location"), Some("https://t.example/secret"));
    assert_eq!(right.header("cache-control"), Some("no-store"));
    let set = right.header("set-cookie").unwrap();
    assert!(set.starts_with("sl_pass="), "{set}");
    assert!(
        set.contains("; Path=/pw;") && set.contains("; HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    assert!(
        !set.contains("Secure"),
        "plain HTTP: not a Secure cookie: {set}"
    );

    // With the pass: the redirect itself, never cached.
    let cookie = cookie_of(&right);
    let again = get(&engine, "pw", &format!("Cookie: a=b; {cookie}\r\n"));
    assert_eq!(again.status, 302);
    assert_eq!(again.header("location"), Some("https://t.example/secret"));
    assert!(again.header("cache-control").unwrap().contains("no-store"));
    // The pass is for this link only, and can't be altered.
    assert_eq!(
        get(&engine, "pw2", &format!("Cookie: {cookie}\r\n")).status,
        200
    );
    let forged = cookie.replacen("sl_pass=", "sl_pass=9", 1);
    assert_eq!(
        get(&engine, "pw", &format!("Cookie: {forged}\r\n")).status,
        200
    );

    // A link without a password is as before: its redirect, and POST 405.
    let open = get(&engine, "open", "");
    assert_eq!(open.status, 301);
    assert!(
        open.header("cache-control")
            .unwrap()
            .contains("max-age=86400")
    );
    assert_eq!(post(&engine, "open", "", "password=x").status, 405);
    assert_eq!(post(&engine, "missing", "", "password=x").status, 405);
    assert_eq!(
        engine.metric_sum("engine_responses_total", "status=\"303\""),
        1.0
    );
}

#[test]
fn a_form_body_in_pieces_is_waited_for_and_odd_bodies_are_refused() {
    let (_dir, engine) = start();
    let mut stream = TcpStream::connect(engine.listen).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Separate segments: an engine that answered the first piece would
    // answer 403 (the password cut short), not 303.
    stream.set_nodelay(true).unwrap();
    let body = format!("password={}", PASSWORD.replace(' ', "+"));
    let head = format!(
        "POST /pw HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body.as_bytes()[..5]).unwrap();
    stream.flush().unwrap();
    // Then the rest, with the next request right behind it.
    std::thread::yield_now();
    stream.write_all(&body.as_bytes()[5..]).unwrap();
    stream
        .write_all(b"GET /open HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let answers = read_responses(&mut stream, 2);
    assert_eq!((answers[0].status, answers[1].status), (303, 301));

    // A body past the form's limit is refused, not read.
    let big = format!("password={}", "x".repeat(2000));
    assert_eq!(post(&engine, "pw", "", &big).status, 413);
    // Chunked: refused too (the form never sends it).
    let chunked = raw(
        engine.listen,
        b"POST /pw HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    assert_eq!(parse_responses(&chunked)[0].status, 413);
    // No password field, or an empty one: the form again.
    assert_eq!(post(&engine, "pw", "", "user=x").status, 403);
    assert_eq!(post(&engine, "pw", "", "password=").status, 403);
}

#[test]
fn guessing_is_refused_before_any_hashing() {
    let (_dir, engine) = start();
    let from = |ip: &str| format!("X-Forwarded-For: {ip}\r\n");
    for i in 0..10 {
        let r = post(
            &engine,
            "pw",
            &from("192.0.2.10"),
            &format!("password=guess{i}"),
        );
        assert_eq!(r.status, 403, "attempt {i}");
    }
    // The same /24 is refused now, even with the right password...
    let limited = post(&engine, "pw", &from("192.0.2.99"), "password=open+sesame");
    assert_eq!(limited.status, 429);
    let retry: u32 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    assert!(text(&limited).contains("Too many attempts"));
    // ...while another visitor, and another link, still get through.
    assert_eq!(
        post(&engine, "pw", &from("203.0.113.7"), "password=open+sesame").status,
        303
    );
    assert_eq!(
        post(&engine, "pw2", &from("192.0.2.10"), "password=other").status,
        303
    );
}
