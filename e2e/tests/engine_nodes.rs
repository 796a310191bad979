//! Edge nodes on hosts of their own: three engines, each in a network
//! namespace with its own address (`testkit::NetNs`), follow one control
//! and one NATS server that listen on a host-side address. Two start with
//! the stack and get control's snapshot pushes; a third joins late with a
//! fresh state directory and pulls its snapshot (`--pull-snapshot`). Every
//! node serves every link created before and after it joined, and every
//! change (an edit, a delete) reaches all of them.

use e2e::stack::{Stack, StackOptions, node_admin};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use testkit::NetNs;

const TOKEN: &str = "engine-nodes-test-token";
const HOST: &str = "sho.rt";

/// Waits until node `ip` answers every `(code, target)` with a redirect to
/// the target (`None`: 404).
async fn wait_serves(stack: &Stack, ip: &str, links: &[(String, Option<String>)]) {
    testkit::wait_for(
        Duration::from_secs(20),
        Duration::from_millis(20),
        || async {
            for (code, target) in links {
                let (status, location, _) = stack.get_from(ip, HOST, &format!("/{code}")).await;
                let ok = match target {
                    Some(t) => (301..=308).contains(&status) && location.as_deref() == Some(t),
                    None => status == 404,
                };
                if !ok {
                    return false;
                }
            }
            true
        },
    )
    .await
    .unwrap_or_else(|_| panic!("node {ip} never served {links:?}"));
}

#[tokio::test]
async fn nodes_in_namespaces_follow_and_a_late_one_catches_up() {
    let nodes: Vec<NetNs> = (0..3).map(|_| NetNs::create().unwrap()).collect();
    // NATS and control on one host-side address every namespace reaches.
    let hub = nodes[0].host_ip();
    let nats = testkit::PrivateNats::start_on(hub.into()).unwrap();
    let mut options = StackOptions::new("e2e_nodes");
    options.default_domain = Some(HOST);
    options.control_listen = format!("{hub}:0");
    options.nats_servers = Some(nats.url());
    options.control_args = vec!["--engine-admin-token".into(), TOKEN.into()];
    options.engine_args = vec!["--admin-token".into(), TOKEN.into()];
    // Control pushes to the first two; the third pulls.
    options.extra_engine_admins = nodes[..2].iter().map(node_admin).collect();
    let stack = Stack::start(options).await;
    let key = stack
        .create_key(&["--org", "acme", "--scopes", "admin"])
        .await;

    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut engines = Vec::new();
    for (ns, dir) in nodes[..2].iter().zip(&dirs) {
        engines.push(stack.spawn_engine_in(ns, dir.path(), &[]).await);
        stack.wait_following(&node_admin(ns)).await;
    }

    let mut links: Vec<(String, Option<String>)> = Vec::new();
    let create = |i: usize| {
        let stack = &stack;
        let key = &key;
        async move {
            let target = format!("https://nodes.example/{i}");
            let (s, body) = stack
                .call(
                    key,
                    Method::POST,
                    "/v1/links",
                    Some(json!({ "target": target })),
                )
                .await;
            assert_eq!(s, 201, "{body}");
            (body["code"].as_str().unwrap().to_owned(), Some(target))
        }
    };
    for i in 0..20 {
        links.push(create(i).await);
    }
    for ns in &nodes[..2] {
        wait_serves(&stack, &ns.ip().to_string(), &links).await;
    }

    // The late node: nothing in its state directory, nobody pushes to it.
    let pull = format!("http://{}/engine/snapshot", stack.control.listen());
    let late = &nodes[2];
    engines.push(
        stack
            .spawn_engine_in(
                late,
                dirs[2].path(),
                &["--pull-snapshot", &pull, "--pull-interval-ms", "200"],
            )
            .await,
    );
    stack.wait_following(&node_admin(late)).await;
    wait_serves(&stack, &late.ip().to_string(), &links).await;

    // Changes after it joined reach all three: new links, an edit, a delete.
    for i in 20..30 {
        links.push(create(i).await);
    }
    let edited = "https://nodes.example/edited".to_owned();
    let (s, body) = stack
        .call(
            &key,
            Method::PATCH,
            &format!("/v1/links/{}", links[0].0),
            Some(json!({ "target": edited })),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    links[0].1 = Some(edited);
    let (s, body) = stack
        .call(
            &key,
            Method::DELETE,
            &format!("/v1/links/{}", links[1].0),
            None,
        )
        .await;
    assert_eq!(s, 204, "{body}");
    links[1].1 = None;
    for ns in &nodes {
        wait_serves(&stack, &ns.ip().to_string(), &links).await;
    }
    drop(engines);
}
