//! Sign-in, the session cookie, CSRF, and what a wrong e-mail or password
//! reveals (nothing), with the sign-in rate limits.

mod common;

use common::{PASSWORD, TestApp, error_code, status_json};
use control::auth::Role;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn sign_in_cookie_attributes_who_am_i_and_sign_out() {
    let app = TestApp::start().await;
    let id = app
        .user("Ann@Example.COM", Some(("acme", Role::Owner)))
        .await;
    // The domain is normalised; the local part matches in any case.
    let s = app.login("ANN@example.com", PASSWORD).await;
    let attrs: Vec<&str> = s.set_cookie.split("; ").collect();
    assert!(s.cookie.starts_with("session="), "{}", s.set_cookie);
    assert_eq!(s.cookie.len(), "session=".len() + 43, "256 random bits");
    for a in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=604800"] {
        assert!(attrs.contains(&a), "{a} in {}", s.set_cookie);
    }
    assert!(
        !attrs.contains(&"Secure"),
        "plain http on loopback: {}",
        s.set_cookie
    );
    assert_eq!(s.body["user"]["id"], id);
    assert_eq!(s.body["user"]["email"], "Ann@example.com");
    assert_eq!(s.body["memberships"][0]["org"], "acme");
    assert_eq!(s.body["memberships"][0]["role"], "owner");
    // Only a hash of the cookie's token is stored.
    let token = s.cookie.split_once('=').unwrap().1;
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM sessions")
        .fetch_all(&app.running.state.db)
        .await
        .unwrap();
    assert_eq!(stored, vec![control::auth::hash_key(token)]);

    // Who is signed in: a GET needs no CSRF token.
    let r = app
        .http
        .get(format!("{}/v1/session", app.base))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    let (st, me) = status_json(r).await;
    assert_eq!(st, 200, "{me}");
    assert_eq!(me["csrf_token"], s.csrf.as_str());
    assert_eq!(me["user"]["email"], "Ann@example.com");
    // A key is not a session.
    let (st, b) = app.call(Method::GET, "/v1/session", &app.admin_key).await;
    assert_eq!((st, error_code(&b)), (401, "unauthorized"));

    // Sign out needs the CSRF token like any write, then clears the cookie.
    let r = app
        .http
        .delete(format!("{}/v1/session", app.base))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app
        .as_user(Method::DELETE, "/v1/session", &s)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (st, b) = app.user_call(Method::GET, "/v1/session", &s, None).await;
    assert_eq!((st, error_code(&b)), (401, "unauthorized"), "{b}");
    let (st, _) = app.user_call(Method::GET, "/v1/links", &s, None).await;
    assert_eq!(st, 401);
}

#[tokio::test]
async fn https_public_url_makes_the_cookie_secure_and_host_only() {
    let app = TestApp::start_with(|c| c.public_url = "https://links.example.com".into()).await;
    app.user("ann@example.com", None).await;
    let s = app.login("ann@example.com", PASSWORD).await;
    assert!(s.cookie.starts_with("__Host-session="), "{}", s.set_cookie);
    assert!(s.set_cookie.ends_with("; Secure"), "{}", s.set_cookie);
    assert!(!s.set_cookie.contains("Domain"), "{}", s.set_cookie);
}

#[tokio::test]
async fn sign_in_rotates_the_session() {
    let app = TestApp::start().await;
    app.user("ann@example.com", Some(("acme", Role::Viewer)))
        .await;
    let first = app.login("ann@example.com", PASSWORD).await;
    // Signing in again from the same browser (the cookie sent along) makes a
    // new session id and ends the one it had.
    let r = app
        .http
        .post(format!("{}/v1/session", app.base))
        .header("cookie", &first.cookie)
        .json(&json!({ "email": "ann@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let second = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(!second.starts_with(&first.cookie));
    let (st, _) = app
        .user_call(Method::GET, "/v1/session", &first, None)
        .await;
    assert_eq!(st, 401, "the old session ended");
}

#[tokio::test]
async fn csrf_token_required_for_cookie_writes_not_for_keys() {
    let app =
        TestApp::start_with(|c| c.cors_origins = vec!["https://dash.example.com".into()]).await;
    app.user("ed@example.com", Some(("acme", Role::Editor)))
        .await;
    let s = app.login("ed@example.com", PASSWORD).await;
    let other = app.login("ed@example.com", PASSWORD).await;
    let link = |alias: &str| json!({ "target": "https://example.com/", "custom_alias": alias });
    let post = || {
        app.http
            .post(format!("{}/v1/links", app.base))
            .header("cookie", &s.cookie)
    };
    // No token, a wrong one, another session's: 403 csrf_failed.
    for (r, why) in [
        (post(), "no token"),
        (
            post().header("x-csrf-token", "x".repeat(43)),
            "a wrong token",
        ),
        (
            post().header("x-csrf-token", &other.csrf),
            "another session's token",
        ),
        (
            post()
                .header("x-csrf-token", &s.csrf)
                .header("origin", "https://evil.example"),
            "a foreign Origin",
        ),
        (
            post()
                .header("x-csrf-token", &s.csrf)
                .header("sec-fetch-site", "cross-site"),
            "a cross-site fetch",
        ),
    ] {
        let (st, b) = status_json(r.json(&link("nope")).send().await.unwrap()).await;
        assert_eq!((st, error_code(&b)), (403, "csrf_failed"), "{why}: {b}");
    }
    // The session's token, from this origin or a listed one: the write happens.
    for (alias, origin) in [
        ("mine1", None),
        ("mine2", Some("http://127.0.0.1:8000")),
        ("mine3", Some("https://dash.example.com")),
    ] {
        let mut r = post()
            .header("x-csrf-token", &s.csrf)
            .header("sec-fetch-site", "same-origin");
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        let (st, b) = status_json(r.json(&link(alias)).send().await.unwrap()).await;
        assert_eq!(st, 201, "{origin:?}: {b}");
    }
    // A key needs no CSRF token, from any origin, cookie or not.
    let r = app
        .req(Method::POST, "/v1/links", &app.admin_key)
        .header("cookie", &s.cookie)
        .header("origin", "https://evil.example")
        .json(&link("bykey"));
    assert_eq!(r.send().await.unwrap().status(), 201);
    // Sign-in itself refuses a foreign origin (login CSRF).
    let r = app
        .http
        .post(format!("{}/v1/session", app.base))
        .header("origin", "https://evil.example")
        .json(&json!({ "email": "ed@example.com", "password": PASSWORD }));
    let (st, b) = status_json(r.send().await.unwrap()).await;
    assert_eq!((st, error_code(&b)), (403, "csrf_failed"));
}

#[tokio::test]
async fn wrong_email_and_wrong_password_get_the_same_answer_and_the_same_work() {
    let app = TestApp::start().await;
    app.user("ann@example.com", None).await;
    let hashes = || app.running.state.metrics.password_hashes.get();
    let before = hashes();
    let (s1, b1, c1) = app
        .try_login("ann@example.com", "not the password at all")
        .await;
    assert_eq!(hashes(), before + 1, "argon2 ran for the wrong password");
    let (s2, b2, c2) = app
        .try_login("nobody@example.com", "not the password at all")
        .await;
    assert_eq!(hashes(), before + 2, "argon2 ran for the unknown e-mail");
    assert_eq!((s1, error_code(&b1)), (401, "invalid_credentials"));
    assert_eq!((s1, &b1, &c1), (s2, &b2, &c2), "identical answers");
    assert!(c1.is_none());
    // Both are in the audit log, for the operator.
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'session.login_failed' AND ip IS NOT NULL",
    )
    .fetch_one(&app.running.state.db)
    .await
    .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn sign_in_is_rate_limited_per_email_and_per_ip() {
    let app = TestApp::start_with(|c| {
        c.login_burst_per_email = 3;
        c.login_rate_per_email = 1.0 / 60.0;
        c.login_burst_per_ip = 8;
        c.login_rate_per_ip = 1.0 / 60.0;
    })
    .await;
    app.user("ann@example.com", None).await;
    for _ in 0..3 {
        let (s, _, _) = app
            .try_login("ann@example.com", "wrong password here")
            .await;
        assert_eq!(s, 401);
    }
    // The address's bucket is empty: even the right password waits.
    let (s, b, _) = app.try_login("Ann@example.com", PASSWORD).await;
    assert_eq!((s, error_code(&b)), (429, "rate_limited"), "{b}");
    assert!(b["error"]["details"]["retry_after"].as_u64().unwrap() >= 1);
    // An address without an account is limited the same way.
    for _ in 0..3 {
        assert_eq!(
            app.try_login("ghost@example.com", "whatever it is").await.0,
            401
        );
    }
    assert_eq!(
        app.try_login("ghost@example.com", "whatever it is").await.0,
        429
    );
    // 8 attempts from this IP so far (the refused ones spent the IP's too):
    // the IP's bucket is empty for every address.
    let (s, _, _) = app.try_login("other@example.com", "whatever it is").await;
    assert_eq!(s, 429);
}

#[tokio::test]
async fn sessions_end_when_idle_or_old() {
    let app = TestApp::start_with(|c| {
        c.session_idle_secs = 600;
        c.session_absolute_secs = 3600;
    })
    .await;
    app.user("ann@example.com", Some(("acme", Role::Viewer)))
        .await;
    let idle = app.login("ann@example.com", PASSWORD).await;
    let old = app.login("ann@example.com", PASSWORD).await;
    let fresh = app.login("ann@example.com", PASSWORD).await;
    assert!(
        old.set_cookie.contains("Max-Age=3600"),
        "{}",
        old.set_cookie
    );
    let db = &app.running.state.db;
    let hash = |s: &common::Session| control::auth::hash_key(s.cookie.split_once('=').unwrap().1);
    sqlx::query(
        "UPDATE sessions SET last_seen_at = now() - interval '601 seconds' WHERE token_hash = $1",
    )
    .bind(hash(&idle))
    .execute(db)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
    )
    .bind(hash(&old))
    .execute(db)
    .await
    .unwrap();
    for (s, expect) in [(&idle, 401), (&old, 401), (&fresh, 200)] {
        let (st, b) = app.user_call(Method::GET, "/v1/links", s, None).await;
        assert_eq!(st, expect, "{b}");
    }
    // A request moves last_seen_at (at most once a minute).
    sqlx::query(
        "UPDATE sessions SET last_seen_at = now() - interval '300 seconds' WHERE token_hash = $1",
    )
    .bind(hash(&fresh))
    .execute(db)
    .await
    .unwrap();
    let (st, _) = app.user_call(Method::GET, "/v1/links", &fresh, None).await;
    assert_eq!(st, 200);
    // The write is off the request path: poll for it with a deadline.
    let seen_ago = || async {
        sqlx::query_scalar::<_, f64>(
            "SELECT extract(epoch FROM now() - last_seen_at)::float8 FROM sessions WHERE token_hash = $1",
        )
        .bind(hash(&fresh))
        .fetch_one(db)
        .await
        .unwrap()
    };
    let moved = testkit::wait_for(
        Duration::from_secs(10),
        Duration::from_millis(10),
        || async { seen_ago().await < 60.0 },
    )
    .await;
    let seen_ago = seen_ago().await;
    assert!(moved.is_ok(), "last_seen_at did not move: {seen_ago} s ago");
}

#[tokio::test]
async fn a_hash_with_older_settings_is_replaced_at_sign_in() {
    use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
    let app = TestApp::start().await;
    let id = app.user("ann@example.com", None).await;
    let cheap = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(8 * 1024, 1, 1, None).unwrap(),
    )
    .hash_password(PASSWORD.as_bytes())
    .unwrap()
    .to_string();
    let db = &app.running.state.db;
    sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
        .bind(id)
        .bind(&cheap)
        .execute(db)
        .await
        .unwrap();
    app.login("ann@example.com", PASSWORD).await;
    // The new hash is written after the answer: wait for it (a fixed
    // number of yields was too short on a loaded machine).
    let stored: String = testkit::wait_for_some(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(10),
        || async {
            let now: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
                .bind(id)
                .fetch_one(db)
                .await
                .unwrap();
            (now != cheap).then_some(now)
        },
    )
    .await
    .expect("the hash was never replaced");
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    app.login("ann@example.com", PASSWORD).await;
}
