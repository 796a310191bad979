//! HTTPS on a customer's domain end to end, on the real binaries: control
//! orders the certificate from a real ACME CA (Debian's pebble, HTTP-01
//! validated through the engine's plain port, the challenge answer sent to
//! the engine over the signed change stream), pushes it to the engine, and
//! the engine serves it on its TLS port: to headless Chromium trusting
//! pebble's root (its click lands in ClickHouse with the domain), after a
//! renewal without a restart, to a restarted engine that lost its state (a
//! new boot id), and no longer once the domain is deleted.

use e2e::stack::{Stack, StackOptions};
use fantoccini::Locator;
use reqwest::Method;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

const DOMAIN: &str = "go.shop.example";
/// The target's host: control, under a name only the browser resolves.
const LANDING: &str = "landing.shop.example";
const TOKEN: &str = "engine-admin-token-for-the-test";
/// Issuance, pushes and withdrawals run on 1 s rounds; pebble validates at once.
const WAIT: Duration = Duration::from_secs(60);

struct Https {
    stack: Stack,
    pebble: testkit::Pebble,
    /// The root pebble issues under.
    issuing_root: String,
    admin_key: String,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Https {
    async fn start() -> Https {
        // Pebble validates HTTP-01 on 127.0.0.1 at the engine's plain port,
        // so that port is fixed before either starts.
        let plain = testkit::free_addr();
        let pebble = testkit::Pebble::start(plain.port()).unwrap();
        let (certs, secrets) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // The operator's own pair (an engine with TLS needs one to start).
        testkit::tls::TestPair::new(&["localhost"])
            .unwrap()
            .write(certs.path(), "localhost")
            .unwrap();
        let key_file = secrets.path().join("acme.key");
        std::fs::write(&key_file, "7".repeat(64)).unwrap();
        std::fs::set_permissions(
            &key_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let mut options = StackOptions::new("e2e_certificates");
        options.engine_listen = plain.to_string();
        options.engine_admin = testkit::free_addr().to_string();
        options.engine_args = vec![
            "--tls-listen".into(),
            "127.0.0.1:0".into(),
            "--tls-certs".into(),
            certs.path().to_str().unwrap().into(),
            "--admin-token".into(),
            TOKEN.into(),
        ];
        options.control_args = vec![
            "--engine-admin-token".into(),
            TOKEN.into(),
            "--acme-directory".into(),
            pebble.directory_url(),
            "--acme-ca-root".into(),
            pebble.ca_root().to_str().unwrap().into(),
            "--acme-key-file".into(),
            key_file.to_str().unwrap().into(),
            "--acme-contact".into(),
            "mailto:ops@shop.example".into(),
            "--acme-check-interval-secs".into(),
            "1".into(),
        ];
        options.resolve_to_engine = vec![DOMAIN.into()];
        options.clicks = true;
        let stack = Stack::start(options).await;
        let admin_key = stack
            .create_key(&["--org", "shop", "--scopes", "admin"])
            .await;
        let issuing_root = pebble.issuing_root_pem().unwrap();
        Https {
            stack,
            pebble,
            issuing_root,
            admin_key,
            _dirs: (certs, secrets),
        }
    }

    fn tls_addr(&self) -> SocketAddr {
        self.stack.engine().ready["tls_listen"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.stack.call(&self.admin_key, method, path, body).await
    }

    /// The certificate's status once `done` holds.
    async fn certificate_when(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let path = format!("/v1/domains/{DOMAIN}/certificate");
        testkit::wait_for_ok(WAIT, Duration::from_millis(100), || async {
            let (status, body) = self.call(Method::GET, &path, None).await;
            match status == 200 && done(&body) {
                true => Ok(body),
                false => Err(body),
            }
        })
        .await
        .unwrap_or_else(|last| panic!("the certificate never became {what}: {last:?}"))
    }

    /// Where `/promo` goes: control's `/healthz` under a public-looking
    /// name (control refuses loopback targets) that the browser resolves to
    /// loopback, so following it never leaves the machine.
    fn target(&self) -> String {
        let port = self
            .stack
            .control
            .listen()
            .rsplit(':')
            .next()
            .unwrap()
            .to_owned();
        format!("http://{LANDING}:{port}/healthz")
    }

    /// Waits until the engine's TLS port presents `leaf` for the domain
    /// (verified against pebble's root) and redirects `/promo` over it.
    async fn served(&self, leaf: &[u8], what: &str) {
        let (addr, root) = (self.tls_addr(), self.issuing_root.clone());
        let leaf = leaf.to_vec();
        let target = self.target();
        testkit::wait_for_ok(WAIT, Duration::from_millis(50), || {
            let root = root.clone();
            let leaf = leaf.clone();
            let target = target.clone();
            async move {
                let exchange = tokio::task::spawn_blocking(move || {
                    testkit::tls::https_get(addr, DOMAIN, root.as_bytes(), "/promo")
                })
                .await
                .unwrap()
                .map_err(|e| format!("{e:#}"))?;
                if exchange.leaf != leaf {
                    return Err("another certificate".to_owned());
                }
                match (exchange.status(), exchange.header("location")) {
                    (301, Some(to)) if to == target => Ok(()),
                    _ => Err(exchange.response),
                }
            }
        })
        .await
        .unwrap_or_else(|last| panic!("{what}: never served over TLS: {last:?}"));
    }

    /// The engine's boot id (`/readyz`).
    async fn boot_id(&self) -> String {
        let readyz: Value = self
            .stack
            .http
            .get(format!("http://{}/readyz", self.stack.engine_admin()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        readyz["boot_id"].as_str().unwrap().to_owned()
    }

    /// Headless Chromium, trusting pebble's root like an installed CA and
    /// resolving the domain to loopback, opens `https://DOMAIN:PORT/promo`:
    /// it must accept the certificate and land on the target; the visit's
    /// click (its `fr-FR` Accept-Language tells it from the probes') reaches
    /// ClickHouse under the domain.
    async fn browse(&self) {
        let Some(browser) = testkit::Browser::start_with(testkit::BrowserOptions {
            width: 1024,
            height: 768,
            trust_roots: vec![self.issuing_root.clone()],
            hosts: vec![
                (DOMAIN.into(), self.tls_addr().ip()),
                (LANDING.into(), self.tls_addr().ip()),
            ],
            lang: Some("fr-FR".into()),
        })
        .await
        .unwrap() else {
            return;
        };
        let c = &browser.client;
        let url = format!("https://{DOMAIN}:{}/promo", self.tls_addr().port());
        c.goto(&url).await.unwrap();
        let landed = c.current_url().await.unwrap();
        assert_eq!(landed.as_str(), self.target(), "Chromium followed {url}");
        let body = c
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.contains("ok"), "{body}");
        browser.close().await;

        let ch = self.stack.clickhouse.as_ref().unwrap();
        let sql = format!(
            "SELECT count() FROM clicks WHERE domain = '{DOMAIN}' AND code = 'promo' \
               AND startsWith(accept_language, 'fr')"
        );
        testkit::wait_for_ok(WAIT, Duration::from_millis(100), || async {
            match ch.query(&sql).await.map(|s| s.trim().to_owned()) {
                Ok(n) if n == "1" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await
        .unwrap_or_else(|e| panic!("the browser's click never reached ClickHouse: {e:?}"));
    }

    /// The leaf of the certificate's chain, DER.
    fn leaf(certificate: &Value) -> Vec<u8> {
        testkit::tls::leaf_der(certificate["chain_pem"].as_str().unwrap()).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_gets_https_from_acme_through_the_engine() {
    let mut https = Https::start().await;

    // Claim and verify the domain (the token is served by the engine), and
    // give it a link.
    let (status, body) = https
        .call(Method::POST, "/v1/domains", Some(json!({ "name": DOMAIN })))
        .await;
    assert_eq!(status, 201, "{body}");
    let verify = format!("/v1/domains/{DOMAIN}/verify");
    testkit::wait_for_ok(WAIT, Duration::from_millis(50), || async {
        match https.call(Method::POST, &verify, None).await {
            (200, body) => Ok(body),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .unwrap();
    let (status, body) = https
        .call(
            Method::POST,
            "/v1/links",
            Some(json!({ "target": https.target(), "custom_alias": "promo", "status": 301, "domain": DOMAIN })),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // Order: pebble validates through the engine, control pushes the pair,
    // the engine serves it for the domain's name.
    let path = format!("/v1/domains/{DOMAIN}/certificate");
    let (status, body) = https.call(Method::POST, &path, None).await;
    assert_eq!(status, 202, "{body}");
    let issued = https
        .certificate_when("issued", |b| b["status"] == "issued")
        .await;
    let first = Https::leaf(&issued);
    https.served(&first, "the first certificate").await;
    https.browse().await;
    let boot_id = https.boot_id().await;

    // A renewal on demand: a new leaf, served by the same engine process
    // (no restart), on new connections.
    let (status, body) = https.call(Method::POST, &path, None).await;
    assert_eq!(status, 202, "{body}");
    let renewed = https
        .certificate_when("renewed", |b| {
            b["status"] == "issued" && b["chain_pem"] != issued["chain_pem"]
        })
        .await;
    let second = Https::leaf(&renewed);
    assert_ne!(first, second);
    https.served(&second, "the renewed certificate").await;
    assert_eq!(https.boot_id().await, boot_id, "the same engine process");

    // An engine that comes back without its state directory (a new boot id)
    // gets the pair pushed again.
    let fresh = tempfile::tempdir().unwrap();
    https.stack.restart_engine(fresh.path()).await;
    https.served(&second, "after a restart without state").await;
    assert!(
        fresh
            .path()
            .join("certs")
            .join(format!("{DOMAIN}.crt"))
            .exists()
    );

    // Deleting the domain withdraws the certificate from the engine: the
    // name is no longer served (the engine has no default certificate).
    let (status, body) = https
        .call(
            Method::DELETE,
            &format!("/v1/domains/{DOMAIN}?cascade=true"),
            None,
        )
        .await;
    assert!(status == 200 || status == 204, "{status} {body}");
    let (addr, root) = (https.tls_addr(), https.issuing_root.clone());
    testkit::wait_for(WAIT, Duration::from_millis(50), || {
        let root = root.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                testkit::tls::https_get(addr, DOMAIN, root.as_bytes(), "/promo").is_err()
            })
            .await
            .unwrap()
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the deleted domain's certificate is still served"));
    assert!(
        !fresh
            .path()
            .join("certs")
            .join(format!("{DOMAIN}.crt"))
            .exists()
    );
    drop(https.pebble);
}
