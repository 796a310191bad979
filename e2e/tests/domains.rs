//! Custom domains end to end, on the real binaries (control, engine) with
//! real PostgreSQL and NATS: claiming a domain, its verification token served
//! by the engine and fetched by control (`--verify-resolve`, no DNS), the
//! same code on two domains, settings reaching the engine, and the API's
//! refusals.

use serde_json::{Value, json};
use std::time::Duration;

/// How soon a change made through the API must be served.
const PROPAGATION: Duration = Duration::from_secs(5);

const BRAND: &str = "go.brand.example";
const OTHER: &str = "links.other.example";

/// The shared stack with both names resolved to its engine, and three keys.
struct Stack {
    inner: e2e::stack::Stack,
    acme: String,
    beta: String,
    operator: String,
}

impl std::ops::Deref for Stack {
    type Target = e2e::stack::Stack;
    fn deref(&self) -> &e2e::stack::Stack {
        &self.inner
    }
}

impl Stack {
    async fn start() -> Stack {
        let mut options = e2e::stack::StackOptions::new("e2e_domains");
        // The verification fetch for both names goes to the engine.
        options.resolve_to_engine = vec![BRAND.into(), OTHER.into()];
        let inner = e2e::stack::Stack::start(options).await;
        let acme = inner
            .create_key(&["--org", "acme", "--scopes", "admin"])
            .await;
        let beta = inner
            .create_key(&["--org", "beta", "--scopes", "admin"])
            .await;
        let operator = inner.create_key(&["--operator"]).await;
        Stack {
            inner,
            acme,
            beta,
            operator,
        }
    }

    /// What the engine answers for `path` under `host`: status, Location, body.
    async fn get(&self, host: &str, path: &str) -> (u16, Option<String>, String) {
        self.engine_get(host, path).await
    }

    /// Waits for the engine to answer `status` and `location` under `host`.
    async fn expect(&self, host: &str, path: &str, status: u16, location: Option<&str>) {
        let ok = testkit::wait_for(PROPAGATION, Duration::from_millis(10), || async {
            let (s, l, _) = self.get(host, path).await;
            s == status && l.as_deref() == location
        })
        .await;
        if ok.is_err() {
            let now = self.get(host, path).await;
            panic!("{host}{path}: wanted {status} {location:?}, engine answers {now:?}");
        }
    }

    /// Verifies `name` for the org of `key`, retrying while the engine has
    /// not received the token yet.
    async fn verify(&self, key: &str, name: &str) -> Value {
        let path = format!("/v1/domains/{name}/verify");
        let verified = testkit::wait_for_ok(PROPAGATION, Duration::from_millis(50), || async {
            match self.call(key, reqwest::Method::POST, &path, None).await {
                (200, body) => Ok(body),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        verified.unwrap_or_else(|e| panic!("verify {name}: {e:?}"))
    }
}

#[tokio::test]
async fn custom_domains_are_served_once_verified() {
    let stack = Stack::start().await;
    use reqwest::Method;

    // Claim: pending, with the token and where it will be answered.
    let (status, claimed) = stack
        .call(
            &stack.acme,
            Method::POST,
            "/v1/domains",
            Some(json!({ "name": "Go.Brand.Example." })),
        )
        .await;
    assert_eq!(status, 201, "{claimed}");
    assert_eq!(claimed["name"], BRAND);
    assert_eq!(claimed["status"], "pending");
    let token = claimed["verification"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let token_url = claimed["verification"]["url"].as_str().unwrap();
    let token_path = token_url.strip_prefix(&format!("http://{BRAND}")).unwrap();

    // The same code on the default domain and on the pending one.
    for (domain, target) in [
        (None, "https://t.example/default"),
        (Some(BRAND), "https://t.example/brand"),
    ] {
        let mut body = json!({ "target": target, "custom_alias": "promo", "status": 302 });
        if let Some(d) = domain {
            body["domain"] = json!(d);
        }
        let (status, link) = stack
            .call(&stack.acme, Method::POST, "/v1/links", Some(body))
            .await;
        assert_eq!(status, 201, "{link}");
    }
    let (_, link) = stack
        .call(
            &stack.acme,
            Method::GET,
            &format!("/v1/links/promo?domain={BRAND}"),
            None,
        )
        .await;
    assert_eq!(link["short_url"], format!("https://{BRAND}/promo"));
    assert_eq!(link["target"], "https://t.example/brand");

    // The engine answers the token for the pending name, not its links.
    let answered = testkit::wait_for(PROPAGATION, Duration::from_millis(10), || async {
        stack.get(BRAND, token_path).await.2 == token
    })
    .await;
    assert!(answered.is_ok(), "token not served");
    stack
        .expect("sho.rt", "/promo", 302, Some("https://t.example/default"))
        .await;
    assert_eq!(stack.get(BRAND, "/promo").await.0, 404, "not verified yet");

    // Verify: control fetches the token from the engine; then it is served.
    let verified = stack.verify(&stack.acme, BRAND).await;
    assert_eq!(verified["status"], "verified");
    assert!(verified["verification"].is_null());
    stack
        .expect(BRAND, "/promo", 302, Some("https://t.example/brand"))
        .await;
    stack
        .expect(
            "SHO.RT.:443",
            "/promo",
            302,
            Some("https://t.example/default"),
        )
        .await;
    stack
        .expect(
            "Go.Brand.Example.:8080",
            "/promo",
            302,
            Some("https://t.example/brand"),
        )
        .await;

    // Per-domain root and not-found redirects, then redirect-https.
    let (status, patched) = stack
        .call(
            &stack.acme,
            Method::PATCH,
            &format!("/v1/domains/{BRAND}"),
            Some(json!({
                "root_redirect": "https://brand.example/",
                "not_found_redirect": "https://brand.example/missing",
                "hsts_max_age": 600,
            })),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    stack
        .expect(BRAND, "/", 302, Some("https://brand.example/"))
        .await;
    stack
        .expect(BRAND, "/nope", 302, Some("https://brand.example/missing"))
        .await;
    assert_eq!(stack.get("sho.rt", "/nope").await.0, 404);
    let (status, _) = stack
        .call(
            &stack.acme,
            Method::PATCH,
            &format!("/v1/domains/{BRAND}"),
            Some(json!({ "http_mode": "redirect-https" })),
        )
        .await;
    assert_eq!(status, 200);
    stack
        .expect(
            BRAND,
            "/promo?utm=1",
            308,
            Some("https://go.brand.example/promo?utm=1"),
        )
        .await;

    // Another organization: the same code on its own domain, and none of
    // acme's domains visible or claimable.
    let (status, _) = stack
        .call(
            &stack.beta,
            Method::POST,
            "/v1/domains",
            Some(json!({ "name": OTHER })),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = stack
        .call(
            &stack.beta,
            Method::POST,
            "/v1/links",
            Some(json!({ "target": "https://t.example/beta", "custom_alias": "promo", "domain": OTHER })),
        )
        .await;
    assert_eq!(status, 201);
    stack.verify(&stack.beta, OTHER).await;
    stack
        .expect(OTHER, "/promo", 301, Some("https://t.example/beta"))
        .await;
    for (method, path) in [
        (Method::GET, format!("/v1/domains/{BRAND}")),
        (Method::POST, format!("/v1/domains/{BRAND}/verify")),
        (Method::DELETE, format!("/v1/domains/{BRAND}")),
        (Method::GET, format!("/v1/links/promo?domain={BRAND}")),
    ] {
        let (status, body) = stack.call(&stack.beta, method.clone(), &path, None).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    let (status, body) = stack
        .call(
            &stack.beta,
            Method::POST,
            "/v1/domains",
            Some(json!({ "name": BRAND })),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("domain_taken"))
    );
    let (status, body) = stack
        .call(
            &stack.beta,
            Method::POST,
            "/v1/links",
            Some(json!({ "target": "https://t.example/x", "domain": BRAND })),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("unknown_domain"))
    );
    let (_, listed) = stack
        .call(&stack.beta, Method::GET, "/v1/domains", None)
        .await;
    assert_eq!(listed["domains"].as_array().unwrap().len(), 1, "{listed}");
    let (status, all) = stack
        .call(&stack.operator, Method::GET, "/v1/admin/domains", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(all["domains"].as_array().unwrap().len(), 2, "{all}");
    assert_eq!(all["default_domain"], "sho.rt");

    // Deleting a domain in use is refused, unless it cascades; then the
    // engine stops serving it.
    let (status, body) = stack
        .call(
            &stack.acme,
            Method::DELETE,
            &format!("/v1/domains/{BRAND}"),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("domain_in_use"))
    );
    let (status, _) = stack
        .call(
            &stack.acme,
            Method::DELETE,
            &format!("/v1/domains/{BRAND}?cascade=true"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    stack.expect(BRAND, "/promo", 404, None).await;
    stack
        .expect("sho.rt", "/promo", 302, Some("https://t.example/default"))
        .await;
}

#[tokio::test]
async fn domain_requests_are_checked() {
    let stack = Stack::start().await;
    use reqwest::Method;
    let create = |name: &'static str| {
        stack.call(
            &stack.acme,
            Method::POST,
            "/v1/domains",
            Some(json!({ "name": name })),
        )
    };
    // Internationalised names are stored in punycode.
    let (status, body) = create("bücher.example").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["name"], "xn--bcher-kva.example");
    let (status, body) = create("XN--BCHER-KVA.example").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("domain_exists"))
    );
    for bad in [
        "https://a.example/",
        "a.example:8080",
        "localhost",
        "10.1.2.3",
        "a_b.example",
        "",
    ] {
        let (status, body) = create(bad).await;
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert_eq!(body["error"]["details"]["field"], "name", "{bad:?}");
    }
    // The deployment's own names are not anyone's to claim.
    for reserved in ["sho.rt", "x.sho.rt"] {
        let (status, body) = create(reserved).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("domain_taken")),
            "{reserved}"
        );
    }
    // Settings are checked like link targets.
    let (status, body) = stack
        .call(
            &stack.acme,
            Method::PATCH,
            "/v1/domains/xn--bcher-kva.example",
            Some(json!({ "root_redirect": "javascript:alert(1)" })),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = stack
        .call(
            &stack.acme,
            Method::PATCH,
            "/v1/domains/xn--bcher-kva.example",
            Some(json!({ "http_mode": "sometimes" })),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = stack
        .call(
            &stack.acme,
            Method::PATCH,
            "/v1/domains/xn--bcher-kva.example",
            Some(json!({ "hsts_max_age": -1 })),
        )
        .await;
    assert_eq!(status, 400);
    // Verification of a name that does not answer the token fails clearly.
    let (status, body) = stack
        .call(
            &stack.acme,
            Method::POST,
            "/v1/domains/xn--bcher-kva.example/verify",
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("verification_failed")),
        "{body}"
    );
    // A viewer-less key without links:write cannot claim.
    let reader = stack
        .create_key(&["--org", "acme", "--scopes", "links:read"])
        .await;
    let (status, _) = stack
        .call(
            reader.trim(),
            Method::POST,
            "/v1/domains",
            Some(json!({ "name": "c.example" })),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = stack
        .call(reader.trim(), Method::GET, "/v1/domains", None)
        .await;
    assert_eq!(status, 200);
}
