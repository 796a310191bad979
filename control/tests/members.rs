//! Roles over the existing routes, choosing an organization, the members
//! API, invitations and password resets.

mod common;

use common::{PASSWORD, TestApp, error_code};
use control::auth::Role;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn roles_map_to_scopes_on_every_route() {
    let app = TestApp::start().await;
    for (email, role) in [
        ("viewer@example.com", Role::Viewer),
        ("editor@example.com", Role::Editor),
        ("admin@example.com", Role::Admin),
    ] {
        app.user(email, Some(("acme", role))).await;
    }
    app.create(json!({ "target": "https://example.com/a", "custom_alias": "a" }))
        .await;
    let viewer = app.login("viewer@example.com", PASSWORD).await;
    let editor = app.login("editor@example.com", PASSWORD).await;
    let admin = app.login("admin@example.com", PASSWORD).await;
    let new_link = json!({ "target": "https://example.com/b" });
    let new_key = json!({ "name": "ci", "scopes": ["links:read"] });

    // The viewer reads links, cannot write them.
    let (s, b) = app
        .user_call(Method::GET, "/v1/links/a", &viewer, None)
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = app
        .user_call(Method::POST, "/v1/links", &viewer, Some(&new_link))
        .await;
    assert_eq!((s, error_code(&b)), (403, "forbidden"), "{b}");
    assert_eq!(b["error"]["details"]["required_scope"], "links:write");
    // The editor writes links, cannot manage keys.
    let (s, b) = app
        .user_call(Method::POST, "/v1/links", &editor, Some(&new_link))
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = app
        .user_call(Method::POST, "/v1/keys", &editor, Some(&new_key))
        .await;
    assert_eq!((s, error_code(&b)), (403, "forbidden"), "{b}");
    // The admin manages keys.
    let (s, b) = app
        .user_call(Method::POST, "/v1/keys", &admin, Some(&new_key))
        .await;
    assert_eq!(s, 201, "{b}");
    // None of them is the operator.
    let (s, b) = app
        .user_call(Method::GET, "/v1/admin/orgs", &admin, None)
        .await;
    assert_eq!(
        (s, b["error"]["details"]["required_principal"].as_str()),
        (403, Some("operator"))
    );
}

#[tokio::test]
async fn several_organizations_are_chosen_with_x_org() {
    let app = TestApp::start().await;
    let id = app
        .user("ann@example.com", Some(("acme", Role::Viewer)))
        .await;
    app.add_member(id, "globex", Role::Editor).await;
    let s = app.login("ann@example.com", PASSWORD).await;
    let (st, b) = app.user_call(Method::GET, "/v1/links", &s, None).await;
    assert_eq!((st, error_code(&b)), (403, "org_required"), "{b}");
    let link = json!({ "target": "https://example.com/" });
    let send = |org: &'static str| {
        app.as_user(Method::POST, "/v1/links", &s)
            .header("x-org", org)
            .json(&link)
            .send()
    };
    assert_eq!(
        send("globex").await.unwrap().status(),
        201,
        "an editor there"
    );
    assert_eq!(send("acme").await.unwrap().status(), 403, "a viewer there");
    let r = send("initech").await.unwrap();
    assert_eq!(r.status(), 403, "not a member");
    // By id too.
    let globex: i64 = sqlx::query_scalar("SELECT id FROM organizations WHERE name = 'globex'")
        .fetch_one(&app.running.state.db)
        .await
        .unwrap();
    let r = app
        .as_user(Method::GET, "/v1/links", &s)
        .header("x-org", globex.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A key names only its own organization.
    let r = app
        .req(Method::GET, "/v1/links", &app.admin_key)
        .header("x-org", "globex")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app
        .req(Method::GET, "/v1/links", &app.admin_key)
        .header("x-org", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn members_are_managed_by_role_and_the_last_owner_stays() {
    let app = TestApp::start().await;
    let owner = app
        .user("owner@example.com", Some(("acme", Role::Owner)))
        .await;
    let admin = app
        .user("admin@example.com", Some(("acme", Role::Admin)))
        .await;
    let editor = app
        .user("editor@example.com", Some(("acme", Role::Editor)))
        .await;
    let o = app.login("owner@example.com", PASSWORD).await;
    let a = app.login("admin@example.com", PASSWORD).await;
    let e = app.login("editor@example.com", PASSWORD).await;
    let member = |id: i64| format!("/v1/orgs/acme/members/{id}");
    let role = |r: &str| json!({ "role": r });

    let (s, b) = app
        .user_call(Method::GET, "/v1/orgs/acme/members", &e, None)
        .await;
    assert_eq!(s, 200, "{b}");
    let listed: Vec<(&str, &str)> = b["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["email"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [
            ("admin@example.com", "admin"),
            ("editor@example.com", "editor"),
            ("owner@example.com", "owner")
        ]
    );
    // Another organization's members are not yours to see.
    app.user("x@example.com", Some(("globex", Role::Owner)))
        .await;
    let (s, _) = app
        .user_call(Method::GET, "/v1/orgs/globex/members", &e, None)
        .await;
    assert_eq!(s, 403);

    // An editor manages nobody.
    let (s, b) = app
        .user_call(Method::PATCH, &member(editor), &e, Some(&role("viewer")))
        .await;
    assert_eq!((s, error_code(&b)), (403, "forbidden"));
    // An admin manages editors and viewers, not admins or owners.
    let (s, b) = app
        .user_call(Method::PATCH, &member(editor), &a, Some(&role("viewer")))
        .await;
    assert_eq!((s, b["role"].as_str()), (200, Some("viewer")), "{b}");
    let (s, b) = app
        .user_call(Method::PATCH, &member(editor), &a, Some(&role("admin")))
        .await;
    assert_eq!((s, error_code(&b)), (403, "forbidden"), "{b}");
    let (s, _) = app
        .user_call(Method::DELETE, &member(owner), &a, None)
        .await;
    assert_eq!(s, 403, "an admin cannot remove the owner");
    let (s, _) = app
        .user_call(Method::PATCH, &member(owner), &a, Some(&role("viewer")))
        .await;
    assert_eq!(s, 403, "nor demote them");
    // The last owner can neither leave nor step down.
    let (s, b) = app
        .user_call(Method::DELETE, &member(owner), &o, None)
        .await;
    assert_eq!((s, error_code(&b)), (409, "last_owner"), "{b}");
    let (s, b) = app
        .user_call(Method::PATCH, &member(owner), &o, Some(&role("admin")))
        .await;
    assert_eq!((s, error_code(&b)), (409, "last_owner"), "{b}");
    // With a second owner, they can.
    let (s, _) = app
        .user_call(Method::PATCH, &member(admin), &o, Some(&role("owner")))
        .await;
    assert_eq!(s, 200);
    let (s, _) = app
        .user_call(Method::DELETE, &member(owner), &o, None)
        .await;
    assert_eq!(s, 204, "an owner leaves");
    // Anyone may leave; the audit log has every change.
    let (s, _) = app
        .user_call(Method::DELETE, &member(editor), &e, None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = app
        .user_call(Method::DELETE, &member(editor), &a, None)
        .await;
    assert_eq!(s, 404, "gone already");
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE action LIKE 'member.%' AND user_id IS NOT NULL ORDER BY id",
    )
    .fetch_all(&app.running.state.db)
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "member.role_change",
            "member.role_change",
            "member.leave",
            "member.leave"
        ]
    );
}

#[tokio::test]
async fn an_invitation_is_accepted_once() {
    let app = TestApp::start().await;
    app.user("admin@example.com", Some(("acme", Role::Admin)))
        .await;
    let a = app.login("admin@example.com", PASSWORD).await;
    let invite = |email: &str, role: &str| json!({ "email": email, "role": role });
    // Admins invite editors and viewers, not owners or admins.
    let (s, b) = app
        .user_call(
            Method::POST,
            "/v1/orgs/acme/invitations",
            &a,
            Some(&invite("boss@example.com", "owner")),
        )
        .await;
    assert_eq!((s, error_code(&b)), (403, "forbidden"), "{b}");
    let (s, b) = app
        .user_call(
            Method::POST,
            "/v1/orgs/acme/invitations",
            &a,
            Some(&invite(" New@Example.com", "editor")),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["email"], "New@example.com");
    assert!(b.get("token").is_none(), "the token goes by mail only");
    let token = app.mailed_token("New@example.com", 0).await;
    let accept = |body: serde_json::Value| {
        let app = &app;
        async move {
            common::status_json(
                app.http
                    .post(format!("{}/v1/invitations/accept", app.base))
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    // A new address needs a password (and a good one).
    let (s, b) = accept(json!({ "token": token })).await;
    assert_eq!(
        (s, b["error"]["details"]["field"].as_str()),
        (400, Some("password"))
    );
    let (s, _) = accept(json!({ "token": token, "password": "short" })).await;
    assert_eq!(s, 400);
    let (s, b) = accept(json!({ "token": token, "password": PASSWORD })).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (b["org"].as_str(), b["role"].as_str()),
        (Some("acme"), Some("editor"))
    );
    assert_eq!(b["user_created"], true);
    // Once.
    let (s, b) = accept(json!({ "token": token, "password": PASSWORD })).await;
    assert_eq!((s, error_code(&b)), (410, "token_used"), "{b}");
    let (s, b) = accept(json!({ "token": "x".repeat(43) })).await;
    assert_eq!((s, error_code(&b)), (400, "token_invalid"));
    // The new member signs in and writes links.
    let n = app.login("new@example.com", PASSWORD).await;
    assert_eq!(n.body["memberships"][0]["role"], "editor");
    let (s, _) = app
        .user_call(
            Method::POST,
            "/v1/links",
            &n,
            Some(&json!({ "target": "https://example.com/" })),
        )
        .await;
    assert_eq!(s, 201);

    // An existing account joins without a password; an expired token is 410.
    app.user("old@example.com", Some(("globex", Role::Owner)))
        .await;
    for n in 0..2 {
        let (s, _) = app
            .user_call(
                Method::POST,
                "/v1/orgs/acme/invitations",
                &a,
                Some(&invite("old@example.com", "viewer")),
            )
            .await;
        assert_eq!(s, 201);
        let token = app.mailed_token("old@example.com", n).await;
        if n == 0 {
            sqlx::query("UPDATE invitations SET expires_at = now() - interval '1 second' WHERE email = 'old@example.com'")
                .execute(&app.running.state.db)
                .await
                .unwrap();
            let (s, b) = accept(json!({ "token": token })).await;
            assert_eq!((s, error_code(&b)), (410, "token_expired"), "{b}");
        } else {
            let (s, b) = accept(json!({ "token": token, "password": PASSWORD })).await;
            assert_eq!(s, 400, "an account has a password already: {b}");
            let (s, b) = accept(json!({ "token": token })).await;
            assert_eq!((s, b["user_created"].as_bool()), (200, Some(false)), "{b}");
        }
    }
    // A member is not invited twice.
    let (s, _) = app
        .user_call(
            Method::POST,
            "/v1/orgs/acme/invitations",
            &a,
            Some(&invite("old@example.com", "viewer")),
        )
        .await;
    assert_eq!(s, 409);
}

#[tokio::test]
async fn a_password_reset_ends_every_session_and_says_nothing_about_addresses() {
    let app = TestApp::start().await;
    app.user("ann@example.com", Some(("acme", Role::Viewer)))
        .await;
    let laptop = app.login("ann@example.com", PASSWORD).await;
    let phone = app.login("ann@example.com", PASSWORD).await;
    let request = |email: &str| {
        app.http
            .post(format!("{}/v1/password-reset", app.base))
            .json(&json!({ "email": email }))
            .send()
    };
    let known = common::status_json(request("ann@example.com").await.unwrap()).await;
    let unknown = common::status_json(request("nobody@example.com").await.unwrap()).await;
    assert_eq!(known.0, 202);
    assert_eq!(known, unknown, "the same answer");
    let token = app.mailed_token("ann@example.com", 0).await;
    let confirm = |token: &str, password: &str| {
        app.http
            .post(format!("{}/v1/password-reset/confirm", app.base))
            .json(&json!({ "token": token, "password": password }))
            .send()
    };
    let new_password = "a brand new passphrase";
    let (s, b) = common::status_json(confirm(&token, "short").await.unwrap()).await;
    assert_eq!(
        (s, b["error"]["details"]["field"].as_str()),
        (400, Some("password"))
    );
    let (s, b) = common::status_json(confirm(&token, new_password).await.unwrap()).await;
    assert_eq!((s, b["sessions_ended"].as_u64()), (200, Some(2)), "{b}");
    for s in [&laptop, &phone] {
        let (st, _) = app.user_call(Method::GET, "/v1/session", s, None).await;
        assert_eq!(st, 401, "signed out everywhere");
    }
    assert_eq!(app.try_login("ann@example.com", PASSWORD).await.0, 401);
    app.login("ann@example.com", new_password).await;
    let (s, b) =
        common::status_json(confirm(&token, "yet another passphrase").await.unwrap()).await;
    assert_eq!((s, error_code(&b)), (410, "token_used"));
    // No mail went to the unknown address.
    assert!(app.mail.sent().iter().all(|m| m.to == "ann@example.com"));
}

#[tokio::test]
async fn the_command_line_makes_users_and_sets_passwords() {
    let app = TestApp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let control = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_control"))
            .args(args)
            .args(["--database-url", app.pg.url()])
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = control(&[
        "users",
        "create",
        "--email",
        "first@example.com",
        "--org",
        "initech",
        "--role",
        "owner",
        "--password-file",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = app.login("first@example.com", PASSWORD).await;
    assert_eq!(s.body["memberships"][0]["role"], "owner");
    // Twice: refused, naming the field.
    let out = control(&[
        "users",
        "create",
        "--email",
        "FIRST@example.com",
        "--password-file",
        file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("email:"));
    // A new password from standard input ends the sessions.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_control"))
        .args(["users", "set-password", "--email", "first@example.com"])
        .args(["--database-url", app.pg.url()])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"another long passphrase\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let (st, _) = app.user_call(Method::GET, "/v1/session", &s, None).await;
    assert_eq!(st, 401);
    app.login("first@example.com", "another long passphrase")
        .await;
    // An operator user acts as the operator.
    let out = control(&[
        "users",
        "create",
        "--email",
        "ops@example.com",
        "--operator",
        "--password-file",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let ops = app.login("ops@example.com", PASSWORD).await;
    assert_eq!(ops.body["user"]["operator"], true);
    let (st, b) = app
        .user_call(Method::GET, "/v1/admin/orgs", &ops, None)
        .await;
    assert_eq!(st, 200, "{b}");
}
