//! The stack on a three-node JetStream cluster (`testkit::NatsCluster`),
//! every process given all three servers, LINKS and CLICKS replicated three
//! ways. Under load (link creates through control's API, redirects through
//! the engine) the node leading the click stream is SIGKILLed, the load
//! goes on, the node comes back. No client error (every create answered
//! 201, every redirect a redirect: nothing is retried), every created link
//! served by the engine, every redirect exactly one row in ClickHouse
//! (compared request by request: each carries its own `Accept-Language`).

use e2e::stack::{Stack, StackOptions};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::NatsCluster;

/// What the load has done so far.
#[derive(Default)]
struct Progress {
    /// `Accept-Language` tags of the requests the engine answered with a
    /// redirect: each must be exactly one click row.
    clicks: Mutex<Vec<String>>,
    /// Links created through the API: (code, target).
    links: Mutex<Vec<(String, String)>>,
    next_tag: AtomicU64,
    stop: AtomicBool,
}

impl Progress {
    fn clicks(&self) -> usize {
        self.clicks.lock().unwrap().len()
    }

    fn links(&self) -> usize {
        self.links.lock().unwrap().len()
    }

    /// `GET /code` on the engine with a fresh tag; a redirect is recorded
    /// as a click. Returns the status and the `Location`.
    async fn get(
        &self,
        http: &reqwest::Client,
        engine: &str,
        code: &str,
    ) -> anyhow::Result<(u16, Option<String>)> {
        let tag = format!("t{}", self.next_tag.fetch_add(1, Ordering::Relaxed));
        let r = http
            .get(format!("http://{engine}/{code}"))
            .header("host", "sho.rt")
            .header("accept-language", &tag)
            .send()
            .await?;
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if (300..400).contains(&status) {
            self.clicks.lock().unwrap().push(tag);
        }
        Ok((status, location))
    }
}

async fn create(http: &reqwest::Client, control: &str, key: &str, target: &str) -> (u16, Value) {
    let r = http
        .post(format!("http://{control}/v1/links"))
        .bearer_auth(key)
        .json(&json!({ "target": target }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("creating a link: {e}"));
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Creates links until told to stop; every answer must be a 201.
async fn create_loop(progress: Arc<Progress>, http: reqwest::Client, control: String, key: String) {
    let mut i = 0;
    while !progress.stop.load(Ordering::Relaxed) {
        let target = format!("https://example.com/cluster/{i}");
        let (status, body) = create(&http, &control, &key, &target).await;
        assert_eq!(status, 201, "create {i}: {body}");
        let code = body["code"].as_str().unwrap().to_owned();
        progress.links.lock().unwrap().push((code, target));
        i += 1;
    }
}

/// Follows `codes` round robin until told to stop; every answer must be a
/// redirect (the engine serves from memory whatever NATS does).
async fn redirect_loop(
    progress: Arc<Progress>,
    http: reqwest::Client,
    engine: String,
    codes: Vec<String>,
) {
    for code in codes.iter().cycle() {
        if progress.stop.load(Ordering::Relaxed) {
            return;
        }
        let (status, _) = progress
            .get(&http, &engine, code)
            .await
            .unwrap_or_else(|e| panic!("redirect {code}: {e}"));
        assert!((300..400).contains(&status), "redirect {code}: {status}");
    }
}

/// Waits until the load has made `links` links and `clicks` clicks more
/// than `since`.
async fn progress_by(progress: &Progress, since: (usize, usize), links: usize, clicks: usize) {
    testkit::wait_for(
        Duration::from_secs(120),
        Duration::from_millis(50),
        || async { progress.links() >= since.0 + links && progress.clicks() >= since.1 + clicks },
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "the load stalled: {} links, {} clicks (from {since:?})",
            progress.links(),
            progress.clicks()
        )
    });
}

/// The stream's replica count and its peers (leader first) as the cluster
/// reports them.
async fn replicas(js: &async_nats::jetstream::Context, name: &str) -> Option<(usize, usize)> {
    let mut stream = js.get_stream(name).await.ok()?;
    let info = stream.info().await.ok()?;
    let peers = info
        .cluster
        .as_ref()
        .map_or(0, |c| usize::from(c.leader.is_some()) + c.replicas.len());
    Some((info.config.num_replicas, peers))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_node_killed_under_load_loses_no_click_no_change_and_no_request() {
    let mut cluster = tokio::task::block_in_place(NatsCluster::start).unwrap();
    let stack = Stack::start(StackOptions {
        clicks: true,
        nats_servers: Some(cluster.urls()),
        stream_replicas: Some(3),
        ..StackOptions::new("e2e_cluster")
    })
    .await;
    let js = async_nats::jetstream::new(cluster.connect().await.unwrap());
    let clicks_stream = stack.nats.stream_name("CLICKS");
    for name in [&stack.stream, &clicks_stream] {
        testkit::wait_for_ok(
            Duration::from_secs(30),
            Duration::from_millis(50),
            || async {
                match replicas(&js, name).await {
                    Some((3, 3)) => Ok(()),
                    other => Err(format!("{name}: (replicas, peers) {other:?}")),
                }
            },
        )
        .await
        .expect("both streams on three replicas");
    }

    let key = stack.create_key(&["--org", "acme"]).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (control, engine) = (stack.control.listen(), stack.engine().listen());
    let progress = Arc::new(Progress::default());

    // Links the redirect load follows, served before it starts.
    let mut followed = Vec::new();
    for i in 0..8 {
        let target = format!("https://example.com/followed/{i}");
        let (status, body) = create(&http, &control, &key, &target).await;
        assert_eq!(status, 201, "{body}");
        followed.push((body["code"].as_str().unwrap().to_owned(), target));
    }
    for (code, target) in &followed {
        testkit::wait_for(
            Duration::from_secs(30),
            Duration::from_millis(20),
            || async {
                progress
                    .get(&http, &engine, code)
                    .await
                    .is_ok_and(|(_, location)| location.as_deref() == Some(target))
            },
        )
        .await
        .unwrap_or_else(|_| panic!("{code} never served"));
    }

    let loads = [
        tokio::spawn(create_loop(
            progress.clone(),
            http.clone(),
            control.clone(),
            key.clone(),
        )),
        tokio::spawn(redirect_loop(
            progress.clone(),
            http.clone(),
            engine.clone(),
            followed.iter().map(|(c, _)| c.clone()).collect(),
        )),
    ];
    let mark = || (progress.links(), progress.clicks());
    progress_by(&progress, mark(), 20, 300).await;

    // Kill the node leading the click stream (every batch goes through it).
    let victim = NatsCluster::stream_leader(&js, &clicks_stream)
        .await
        .unwrap()
        .expect("the click stream has a leader");
    let links_leader = NatsCluster::stream_leader(&js, &stack.stream)
        .await
        .unwrap();
    eprintln!("killing n{victim} (leads the clicks stream; links stream led by {links_leader:?})");
    let killed_at = Instant::now();
    tokio::task::block_in_place(|| cluster.kill(victim));
    // The load goes on across the election of the stream's new leader.
    let successor = testkit::wait_for_some(
        Duration::from_secs(60),
        Duration::from_millis(50),
        || async {
            NatsCluster::stream_leader(&js, &clicks_stream)
                .await
                .ok()
                .flatten()
                .filter(|n| *n != victim)
        },
    )
    .await
    .expect("the click stream elects another leader");
    eprintln!(
        "n{successor} leads the clicks stream {:?} after the kill",
        killed_at.elapsed()
    );
    progress_by(&progress, mark(), 20, 300).await;
    eprintln!(
        "load went on through {:?} without n{victim}",
        killed_at.elapsed()
    );
    tokio::task::block_in_place(|| cluster.restart(victim)).unwrap();
    progress_by(&progress, mark(), 20, 300).await;
    progress.stop.store(true, Ordering::Relaxed);
    for load in loads {
        load.await.unwrap();
    }

    // Every created link is served.
    let links = progress.links.lock().unwrap().clone();
    for (code, target) in &links {
        testkit::wait_for(
            Duration::from_secs(30),
            Duration::from_millis(20),
            || async {
                progress
                    .get(&http, &engine, code)
                    .await
                    .is_ok_and(|(_, location)| location.as_deref() == Some(target))
            },
        )
        .await
        .unwrap_or_else(|_| panic!("{code} created but never served"));
    }

    // Every redirect is exactly one row.
    let mut want = progress.clicks.lock().unwrap().clone();
    want.sort();
    let ch = stack.clickhouse.as_ref().unwrap();
    let count = || async {
        ch.query("SELECT count() FROM clicks")
            .await
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(0)
    };
    testkit::wait_for_ok(
        Duration::from_secs(120),
        Duration::from_millis(100),
        || async {
            match count().await {
                n if n >= want.len() => Ok(()),
                n => Err(format!("{n} of {} clicks stored", want.len())),
            }
        },
    )
    .await
    .unwrap();
    let metrics = stack.analytics.as_ref().unwrap().ready["metrics"]
        .as_str()
        .unwrap()
        .to_owned();
    testkit::wait_for(
        Duration::from_secs(60),
        Duration::from_millis(50),
        || async {
            e2e::clicks::metrics(&metrics).await.is_ok_and(|m| {
                m.get("analytics_consumer_pending") == Some(&0.0)
                    && m.get("analytics_consumer_ack_pending") == Some(&0.0)
            })
        },
    )
    .await
    .expect("the sidecar's consumer drained");
    let stored = ch
        .query("SELECT accept_language FROM clicks ORDER BY accept_language")
        .await
        .unwrap();
    let stored: Vec<&str> = stored.lines().collect();
    assert_eq!(stored.len(), want.len(), "rows against redirects served");
    assert!(
        stored.iter().zip(&want).all(|(a, b)| a == b),
        "the stored clicks are not the redirects served"
    );
    let unique_ids = ch
        .query("SELECT uniqExact(event_id) FROM clicks")
        .await
        .unwrap();
    assert_eq!(unique_ids.trim(), want.len().to_string());
    let admin = stack.engine_admin();
    let m = e2e::clicks::metrics(&admin).await.unwrap();
    assert_eq!(m["engine_clicks_captured_total"], want.len() as f64);
    assert_eq!(m["engine_clicks_dropped_total"], 0.0);
    eprintln!(
        "{} links created, {} redirects, all stored once; n{victim} down for part of it",
        links.len(),
        want.len()
    );
}
