//! Proving a domain with a DNS TXT record (`--domain-verification dns-txt`,
//! the default), against a real DNS server: pebble-challtestsrv, the mock
//! DNS of Debian's pebble, which the test tells what to answer.

mod common;

use common::{TestApp, error_code};
use control::config::DomainVerification;
use reqwest::Method;
use serde_json::json;

const NAME: &str = "go.brand.example";

#[tokio::test]
async fn only_the_token_in_the_zone_verifies_a_domain() {
    let dns = testkit::Pebble::start(testkit::free_port()).unwrap();
    let server = dns.dns_addr();
    let app = TestApp::start_with(move |c| {
        c.domain_verification = DomainVerification::DnsTxt;
        c.dns_server = Some(server);
    })
    .await;
    let beta = app.key("beta", &["admin"]).await;
    let claim = |key: String| {
        let app = &app;
        async move {
            let (s, body) = app
                .send_json(Method::POST, "/v1/domains", &key, &json!({ "name": NAME }))
                .await;
            assert_eq!(s, 201, "{body}");
            body
        }
    };
    let path = format!("/v1/domains/{NAME}/verify");

    // Two organizations claim the same name; each gets its own token and is
    // told where the record goes.
    let acme = claim(app.admin_key.clone()).await;
    let other = claim(beta.clone()).await;
    let record = format!("_links-verification.{NAME}");
    assert_eq!(acme["verification"]["method"], "dns-txt", "{acme}");
    assert_eq!(acme["verification"]["txt_record"], record.as_str());
    let token = acme["verification"]["token"].as_str().unwrap().to_owned();
    assert_ne!(other["verification"]["token"], token.as_str());
    assert!(
        acme["verification"]["instructions"]
            .as_str()
            .unwrap()
            .contains(&token),
        "{acme}"
    );

    // No record yet, then a record with another value: 422 saying why.
    let (s, body) = app.call(Method::POST, &path, &app.admin_key).await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(error_code(&body), "verification_failed");
    assert!(body.to_string().contains(&record), "{body}");
    dns.set_txt(&record, "not-the-token").unwrap();
    let (s, body) = app.call(Method::POST, &path, &app.admin_key).await;
    assert_eq!(s, 422, "{body}");
    assert!(body.to_string().contains("do not hold the token"), "{body}");

    // The zone's owner publishes acme's token: acme verifies; the other
    // organization, whose token is not in the zone, cannot take the name.
    dns.set_txt(&record, &token).unwrap();
    let (s, body) = app.call(Method::POST, &path, &beta).await;
    assert_eq!(s, 422, "{body}");
    let (s, body) = app.call(Method::POST, &path, &app.admin_key).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["status"], "verified", "{body}");
    assert!(body["verification"].is_null(), "{body}");
}
