//! Engines that pull their snapshot from control (`--pull-snapshot`) on the
//! real binaries: a new engine nobody pushes to downloads the latest
//! generation and serves it, then only asks (answered `304`) while the
//! change stream keeps it current; the route wants the engines' token; an
//! interrupted download resumes with a range of the same file; the file is
//! signed by control and opened by its signature.

use e2e::stack::{Stack, StackOptions};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const TOKEN: &str = "pull-test-token";

async fn stack() -> Stack {
    let mut options = StackOptions::new("e2e_pull");
    options.default_domain = None;
    options.control_args = vec!["--engine-admin-token".into(), TOKEN.into()];
    options.engine_args = vec!["--admin-token".into(), TOKEN.into()];
    Stack::start(options).await
}

async fn metric(addr: &str, name: &str) -> f64 {
    e2e::clicks::metrics(addr)
        .await
        .unwrap()
        .get(name)
        .copied()
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_new_engine_pulls_the_latest_snapshot_then_only_asks() {
    let stack = stack().await;
    let key = stack
        .create_key(&["--org", "acme", "--scopes", "admin"])
        .await;
    let operator = stack.create_key(&["--operator"]).await;
    let mut codes = Vec::new();
    for i in 0..10 {
        let (s, body) = stack
            .call(
                &key,
                Method::POST,
                "/v1/links",
                Some(json!({ "target": format!("https://pulled.example/{i}") })),
            )
            .await;
        assert_eq!(s, 201, "{body}");
        codes.push(body["code"].as_str().unwrap().to_owned());
    }
    let (s, built) = stack
        .call(&operator, Method::POST, "/v1/admin/snapshots", None)
        .await;
    assert!(s == 201 || s == 200, "{s} {built}");
    assert_eq!(built["generation"]["seq"], 10);

    // An engine control does not know of, pulling every 100 ms.
    let control = stack.control.listen();
    let admin = testkit::free_addr().to_string();
    let dir = tempfile::tempdir().unwrap();
    let pull_url = format!("http://{control}/engine/snapshot");
    let puller = stack
        .spawn_engine_with(
            &admin,
            dir.path(),
            &["--pull-snapshot", &pull_url, "--pull-interval-ms", "100"],
        )
        .await;
    stack.wait_following(&admin).await;
    let readyz: Value = stack
        .http
        .get(format!("http://{admin}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        readyz["snapshot"]["sequence"].as_u64().unwrap() >= 10,
        "{readyz}"
    );
    for (i, code) in codes.iter().enumerate() {
        let r = stack
            .http
            .get(format!("http://{}/{code}", puller.listen()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 301, "{code}");
        assert_eq!(
            r.headers()["location"],
            format!("https://pulled.example/{i}").as_str()
        );
    }
    assert_eq!(metric(&admin, "engine_snapshot_pulls_total").await, 1.0);
    // Control signs what it builds with the links key the engine trusts: the
    // engine opened the file by its signature, not the complete check.
    assert_eq!(metric(&admin, "engine_snapshot_signed").await, 1.0);

    // Up to date and following the stream: control answers 304 from now on.
    let asked = metric(&control, "control_snapshot_pulls_not_modified_total").await;
    testkit::wait_for(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async {
            metric(&control, "control_snapshot_pulls_not_modified_total").await >= asked + 3.0
        },
    )
    .await
    .expect("the engine keeps asking and is told nothing is newer");
    // A change after the snapshot reaches the puller by the stream alone.
    let (s, body) = stack
        .call(
            &key,
            Method::POST,
            "/v1/links",
            Some(json!({ "target": "https://pulled.example/after" })),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let after = body["code"].as_str().unwrap().to_owned();
    testkit::wait_for(
        Duration::from_secs(5),
        Duration::from_millis(10),
        || async {
            stack
                .http
                .get(format!("http://{}/{after}", puller.listen()))
                .send()
                .await
                .is_ok_and(|r| r.status() == 301)
        },
    )
    .await
    .expect("the change after the snapshot is served");
    assert_eq!(metric(&admin, "engine_snapshot_pulls_total").await, 1.0);
    assert_eq!(
        metric(&admin, "engine_snapshot_pull_errors_total").await,
        0.0
    );
    assert_eq!(metric(&control, "control_snapshot_pulls_total").await, 1.0);
}

#[tokio::test]
async fn the_route_wants_the_token_and_resumes_a_range_of_the_same_file() {
    let stack = stack().await;
    let operator = stack.create_key(&["--operator"]).await;
    let (s, built) = stack
        .call(&operator, Method::POST, "/v1/admin/snapshots", None)
        .await;
    assert!(s == 201 || s == 200, "{s} {built}");
    let url = format!("http://{}/engine/snapshot", stack.control.listen());

    let none = stack.http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let wrong = stack
        .http
        .get(&url)
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    // An organization's API key is not an engine's credential either.
    let key = stack
        .create_key(&["--org", "acme", "--scopes", "admin"])
        .await;
    let org = stack.http.get(&url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(org.status(), 401);

    let full = stack
        .http
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(full.status(), 200);
    let etag = full.headers()["etag"].to_str().unwrap().to_owned();
    let whole = full.bytes().await.unwrap();
    // Listings name the file in control's --snapshot-dir, not its path.
    let name = built["generation"]["file"].as_str().unwrap();
    let on_disk = std::fs::read(stack.control_dir.path().join(name)).unwrap();
    assert_eq!(whole.as_ref(), on_disk.as_slice());
    assert!(
        snapshots::Snapshot::from_bytes(&whole).is_ok(),
        "a valid snapshot"
    );

    let same = stack
        .http
        .get(&url)
        .bearer_auth(TOKEN)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 304);

    let rest = stack
        .http
        .get(&url)
        .bearer_auth(TOKEN)
        .header("range", "bytes=100-")
        .header("if-range", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 206);
    assert_eq!(
        rest.headers()["content-range"],
        format!("bytes 100-{}/{}", whole.len() - 1, whole.len()).as_str()
    );
    assert_eq!(rest.bytes().await.unwrap().as_ref(), &whole[100..]);

    // A range of another generation's file is not spliced: the whole file.
    let stale = stack
        .http
        .get(&url)
        .bearer_auth(TOKEN)
        .header("range", "bytes=100-")
        .header("if-range", "\"1-0000000000000000\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
    assert_eq!(stale.bytes().await.unwrap().len(), whole.len());
}
