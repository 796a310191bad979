//! The OpenAPI document is strict enough for a fuzzer to drive the API
//! (`deploy/schemathesis.sh`), and the service answers what it says: the
//! regressions schemathesis found are here too.

mod common;

use common::{TestApp, status_json};
use serde_json::Value;

async fn document(app: &TestApp) -> Value {
    let (s, doc) = status_json(
        app.http
            .get(format!("{}/openapi.json", app.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    doc
}

fn param<'a>(op: &'a Value, name: &str, place: &str) -> &'a Value {
    op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name && p["in"] == place)
        .unwrap_or_else(|| panic!("no {place} parameter {name} in {op}"))
}

#[tokio::test]
async fn openapi_document_is_strict() {
    let app = TestApp::start().await;
    let doc = document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let op = |method: &str, path: &str| doc["paths"][path][method].clone();

    // Required fields, enums and formats of request bodies.
    let create = &schemas["CreateLink"];
    assert!(
        create["required"]
            .as_array()
            .is_some_and(|r| r.contains(&"target".into())),
        "{create}"
    );
    assert_eq!(create["properties"]["target"]["format"], "uri");
    assert_eq!(
        create["properties"]["status"]["enum"],
        serde_json::json!([301, 302, 307, 308, null])
    );
    assert_eq!(schemas["Login"]["properties"]["email"]["format"], "email");
    // The limits the handlers check, as the schema states them.
    let password = &schemas["ResetConfirm"]["properties"]["password"];
    assert_eq!(
        (
            password["minLength"].as_u64(),
            password["maxLength"].as_u64()
        ),
        (
            Some(control::accounts::password::MIN_PASSWORD_CHARS as u64),
            Some(control::accounts::password::MAX_PASSWORD_BYTES as u64)
        )
    );
    assert_eq!(
        schemas["CreateKey"]["properties"]["name"]["maxLength"].as_u64(),
        Some(control::keys::MAX_NAME_LEN as u64)
    );
    assert_eq!(
        schemas["CreateKey"]["properties"]["scopes"]["items"]["enum"],
        serde_json::json!(["links:read", "links:write", "stats:read", "admin"])
    );
    assert_eq!(
        schemas["LinkJson"]["properties"]["created_at"]["format"],
        "date-time"
    );

    // Query parameters from the handlers' query types.
    let list = op("get", "/v1/links");
    let limit = &param(&list, "limit", "query")["schema"];
    assert_eq!(
        (limit["minimum"].as_i64(), limit["maximum"].as_i64()),
        (Some(1), Some(1000))
    );
    for name in ["cursor", "tag", "q", "domain", "disabled"] {
        param(&list, name, "query");
    }
    assert!(
        param(&list, "created_after", "query")["schema"]
            .to_string()
            .contains("date-time")
    );
    let stats = op("get", "/v1/links/{code}/stats");
    assert_eq!(
        param(&stats, "bucket", "query")["schema"]["enum"],
        serde_json::json!(["minute", "hour", "day"])
    );
    let summary = op("get", "/v1/stats/summary");
    param(&summary, "limit", "query");
    assert!(
        !summary["parameters"].to_string().contains("\"bucket\""),
        "the summary refuses bucket: {summary}"
    );
    param(&op("get", "/v1/audit"), "cursor", "query");
    param(&op("delete", "/v1/domains/{name}"), "cascade", "query");
    let qr = op("get", "/v1/links/{code}/qr");
    assert_eq!(param(&qr, "size", "query")["schema"]["maximum"], 2048);

    // Headers, read and answered.
    param(&op("post", "/v1/links"), "Idempotency-Key", "header");
    param(&op("patch", "/v1/links/{code}"), "If-Match", "header");
    param(&op("get", "/v1/links/{code}"), "If-None-Match", "header");
    param(&op("get", "/v1/audit"), "X-Org", "header");
    assert_eq!(
        op("get", "/v1/links/{code}")["responses"]["200"]["headers"]["ETag"]["required"],
        true
    );
    assert!(op("get", "/v1/links/{code}")["responses"]["304"].is_object());
    assert!(op("patch", "/v1/links/{code}")["responses"]["412"].is_object());

    // Every operation: its statuses spelled out (no catch-all), errors in the
    // error schema, the rate-limit headers on every answer, Retry-After on 429.
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.contains_key("default"), "{method} {path}");
            assert!(op["operationId"].is_string(), "{method} {path}");
            for (status, response) in responses {
                assert!(
                    response["headers"]["X-RateLimit-Remaining"].is_object(),
                    "{method} {path} {status}"
                );
                let code: u16 = status.parse().unwrap();
                if code >= 400 && path != "/readyz" {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/Error",
                        "{method} {path} {status}"
                    );
                }
            }
            assert!(
                responses["429"]["headers"]["Retry-After"].is_object(),
                "{method} {path}"
            );
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                for status in ["401", "403"] {
                    assert!(responses.contains_key(status), "{method} {path} {status}");
                }
            }
        }
    }

    // A response schema for every operation with a body, lists and the new
    // key's secret included; the media types of QR codes and CSV exports.
    let ok = |method: &str, path: &str, status: &str| {
        op(method, path)["responses"][status]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(ok("post", "/v1/keys", "201"), "CreatedKey");
    assert_eq!(ok("get", "/v1/keys", "200"), "KeyList");
    assert_eq!(ok("get", "/v1/links", "200"), "LinkPage");
    assert_eq!(ok("get", "/v1/domains", "200"), "DomainList");
    assert_eq!(ok("get", "/v1/orgs/{org}/members", "200"), "MemberList");
    assert_eq!(ok("get", "/v1/links/{code}/stats", "200"), "LinkStats");
    assert!(
        schemas["CreatedKey"]["required"]
            .as_array()
            .unwrap()
            .contains(&"secret".into())
    );
    let qr_content = &qr["responses"]["200"]["content"];
    assert!(qr_content["image/svg+xml"].is_object() && qr_content["image/png"].is_object());
    assert!(stats["responses"]["200"]["content"]["text/csv"].is_object());

    // Both security schemes, and CSRF with the session cookie on writes.
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["apiKey"]["name"], "X-API-Key");
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["csrf"]["name"], "X-CSRF-Token");
    let patch_security = op("patch", "/v1/links/{code}")["security"].to_string();
    assert!(
        patch_security.contains(r#"{"csrf":[],"session":[]}"#),
        "{patch_security}"
    );

    // The links a stateful fuzzer follows from a new link to its code.
    let links = &op("post", "/v1/links")["responses"]["201"]["links"];
    assert_eq!(links["GetLink"]["operationId"], "get_v1_links_code");
    assert_eq!(
        links["DeleteLink"]["parameters"]["code"],
        "$response.body#/code"
    );
    assert_eq!(
        op("post", "/v1/keys")["responses"]["201"]["links"]["RevokeKey"]["parameters"]["id"],
        "$response.body#/key/id"
    );
}

/// Found by schemathesis: a create replayed for its Idempotency-Key answered
/// without the `ETag` (and `Location`) the document promises with a 201, so
/// a client could not make a conditional update from a retried create.
#[tokio::test]
async fn idempotent_replay_answers_etag_and_location() {
    let app = TestApp::start().await;
    let create = || {
        app.req(reqwest::Method::POST, "/v1/links", &app.admin_key)
            .header("Idempotency-Key", "replay-etag-1")
            .json(&serde_json::json!({ "target": "https://example.com/replayed" }))
            .send()
    };
    let first = create().await.unwrap();
    assert_eq!(first.status(), 201);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let location = first.headers()["location"].to_str().unwrap().to_owned();
    let replay = create().await.unwrap();
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(replay.headers()["location"].to_str().unwrap(), location);
    // The ETag is the link's: a conditional update with it succeeds.
    let code = location.rsplit('/').next().unwrap();
    let r = app
        .req(
            reqwest::Method::PATCH,
            &format!("/v1/links/{code}"),
            &app.admin_key,
        )
        .header("If-Match", &etag)
        .json(&serde_json::json!({ "title": "replayed" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Found by schemathesis: listing links on a domain that is not the
/// organization's answers 404, which the document now says.
#[tokio::test]
async fn listing_an_unknown_domain_is_a_documented_404() {
    let app = TestApp::start().await;
    let (s, b) = app
        .call(
            reqwest::Method::GET,
            "/v1/links?domain=nope.example",
            &app.admin_key,
        )
        .await;
    assert_eq!((s, common::error_code(&b)), (404, "not_found"), "{b}");
    let doc = document(&app).await;
    assert!(doc["paths"]["/v1/links"]["get"]["responses"]["404"].is_object());
}
