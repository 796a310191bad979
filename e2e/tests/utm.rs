//! UTM parameters per link through the real binaries: control merges a
//! link's UTM values into the target it sends the engines (change stream
//! and snapshot), and the engine's `Location` carries them, after the
//! target's own parameters and before its fragment; with `forward_query`,
//! the visitor's query string follows them. The engine knows nothing of
//! UTM: it redirects to the target it was given.

use serde_json::{Value, json};
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(15);

/// What the engine at `addr` answers for `path`: status and Location.
async fn redirect(stack: &e2e::stack::Stack, addr: &str, path: &str) -> (u16, Option<String>) {
    let r = stack
        .http
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), location)
}

/// Waits until the engine at `addr` answers `path` with `location`.
async fn until_location(stack: &e2e::stack::Stack, addr: &str, path: &str, location: &str) {
    let got = testkit::wait_for_some(WITHIN, Duration::from_millis(20), || async {
        let (_, l) = redirect(stack, addr, path).await;
        (l.as_deref() == Some(location)).then_some(())
    })
    .await;
    if got.is_err() {
        let now = redirect(stack, addr, path).await;
        panic!("{path}: wanted Location {location}, the engine answers {now:?}");
    }
}

async fn call(
    stack: &e2e::stack::Stack,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Value {
    let (status, answer) = stack.call(key, method, path, Some(body)).await;
    assert!((200..300).contains(&status), "{path}: {status} {answer}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_redirects_with_the_links_utm_parameters() {
    // A second engine control pushes snapshots to, started later: it gets
    // the links from a snapshot rather than the change stream.
    let late_admin = testkit::free_addr().to_string();
    let mut options = e2e::stack::StackOptions::new("e2e_utm");
    options.default_domain = None;
    options.extra_engine_admins = vec![late_admin.clone()];
    let stack = e2e::stack::Stack::start(options).await;
    let key = stack
        .create_key(&["--org", "acme", "--scopes", "admin"])
        .await;
    let operator = stack.create_key(&["--operator"]).await;
    let engine = stack.engine().listen();
    use reqwest::Method;

    // The target's own utm_source is replaced, its other parameter kept,
    // the fragment stays last; the API still shows the target as written.
    let link = call(
        &stack,
        &key,
        Method::POST,
        "/v1/links",
        json!({"target": "https://example.com/shop?utm_source=old&ref=7#deals",
               "custom_alias": "sale", "status": 302,
               "utm": {"source": "news letter", "medium": "email", "campaign": "black/friday"}}),
    )
    .await;
    assert_eq!(
        link["target"],
        "https://example.com/shop?utm_source=old&ref=7#deals"
    );
    let sale = "https://example.com/shop?ref=7&utm_source=news%20letter&utm_medium=email&utm_campaign=black%2Ffriday#deals";
    until_location(&stack, &engine, "/sale", sale).await;
    // Without forward_query the visitor's query is dropped.
    assert_eq!(
        redirect(&stack, &engine, "/sale?utm_source=visitor&x=1").await,
        (302, Some(sale.to_owned()))
    );

    // forward_query: the visitor's query string follows the link's own
    // parameters (a visitor's utm_source comes after the link's).
    call(
        &stack,
        &key,
        Method::POST,
        "/v1/links",
        json!({"target": "https://example.com/land#top", "custom_alias": "fwd",
               "forward_query": true, "utm": {"source": "qr", "content": "poster ä"}}),
    )
    .await;
    let fwd = "https://example.com/land?utm_source=qr&utm_content=poster%20%C3%A4#top";
    until_location(&stack, &engine, "/fwd", fwd).await;
    assert_eq!(
        redirect(&stack, &engine, "/fwd?gclid=abc&utm_source=visitor").await,
        (
            301,
            Some(
                "https://example.com/land?utm_source=qr&utm_content=poster%20%C3%A4&gclid=abc&utm_source=visitor#top"
                    .to_owned()
            )
        )
    );

    // A patch changes what the engine redirects to; clearing every value
    // brings back the target as written.
    call(
        &stack,
        &key,
        Method::PATCH,
        "/v1/links/sale",
        json!({"utm": {"medium": "", "term": "coats"}}),
    )
    .await;
    until_location(
        &stack,
        &engine,
        "/sale",
        "https://example.com/shop?ref=7&utm_source=news%20letter&utm_campaign=black%2Ffriday&utm_term=coats#deals",
    )
    .await;
    let plain = call(
        &stack,
        &key,
        Method::PATCH,
        "/v1/links/fwd",
        json!({"utm": null}),
    )
    .await;
    assert!(plain["utm"].is_null(), "{plain}");
    until_location(
        &stack,
        &engine,
        "/fwd?v=1",
        "https://example.com/land?v=1#top",
    )
    .await;

    // A snapshot carries the merged targets: an engine that starts from it
    // redirects the same way.
    let (status, built) = stack
        .call(&operator, Method::POST, "/v1/admin/snapshots", None)
        .await;
    assert!((200..300).contains(&status), "{status} {built}");
    let dir = tempfile::tempdir().unwrap();
    let late = stack.spawn_engine(&late_admin, dir.path()).await;
    let late_listen = late.listen();
    until_location(
        &stack,
        &late_listen,
        "/sale",
        "https://example.com/shop?ref=7&utm_source=news%20letter&utm_campaign=black%2Ffriday&utm_term=coats#deals",
    )
    .await;
    until_location(
        &stack,
        &late_listen,
        "/fwd?v=1",
        "https://example.com/land?v=1#top",
    )
    .await;
}
